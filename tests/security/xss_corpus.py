"""Writes tests/data/xss_payloads.json: the XSS test's payloads (run it to regenerate).

The base vectors are the well-known ones of the OWASP XSS Filter Evasion Cheat Sheet
and the PortSwigger XSS cheat sheet (script tags, event handlers, javascript:, data: and
vbscript: URLs, entity and case tricks, mutation XSS, template injection); hosts are
``.invalid`` so nothing could ever be fetched. Each is then put in the contexts where an
escaping bug would let it out: closing a double- or single-quoted attribute, closing a
script element (``</script>``), with U+2028/U+2029 (line terminators in JSON-in-JS), in
the middle of ordinary text, and upper-cased.
"""

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "xss_payloads.json"
LS, PS = "\u2028", "\u2029"

BASE = [
    "<script>alert(1)</script>",
    "<SCRIPT>alert(String.fromCharCode(88,83,83))</SCRIPT>",
    "<script>print()</script>",
    "<script>confirm(1)</script>",
    "<script>prompt(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\"\\>",
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<IMG SRC= onmouseover=\"alert('xxs')\">",
    "<IMG onmouseover=\"alert('xxs')\">",
    "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
    "<img src=x onerror=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114"
    "&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116"
    "&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041\">",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;"
    "&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
    "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72"
    "&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29>",
    "<IMG SRC=\"jav\tascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x0A;ascript:alert('XSS');\">",
    "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
    "<SCRIPT/XSS SRC=\"https://xss.invalid/xss.js\"></SCRIPT>",
    "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert(\"XSS\")>",
    "<<SCRIPT>alert(\"XSS\");//\\<</SCRIPT>",
    "<SCRIPT SRC=https://xss.invalid/xss.js?< B >",
    "<IMG SRC=\"`<javascript:alert>`('XSS')\"",
    "</TITLE><SCRIPT>alert(\"XSS\");</SCRIPT>",
    "<INPUT TYPE=\"IMAGE\" SRC=\"javascript:alert('XSS');\">",
    "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
    "<IMG DYNSRC=\"javascript:alert('XSS')\">",
    "<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE><UL><LI>XSS</br>",
    "<svg/onload=alert('XSS')>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<BODY ONLOAD=alert('XSS')>",
    "<body onpageshow=alert(1)>",
    "<BGSOUND SRC=\"javascript:alert('XSS');\">",
    "<LINK REL=\"stylesheet\" HREF=\"javascript:alert('XSS');\">",
    "<STYLE>@import'https://xss.invalid/xss.css';</STYLE>",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=data:text/html base64,"
    "PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4K\">",
    "<IFRAME SRC=\"javascript:alert('XSS');\"></IFRAME>",
    "<IFRAME SRC=# onmouseover=\"alert(document.cookie)\"></IFRAME>",
    "<iframe srcdoc=\"<script>alert(1)</script>\">",
    "<FRAMESET><FRAME SRC=\"javascript:alert('XSS');\"></FRAMESET>",
    "<TABLE BACKGROUND=\"javascript:alert('XSS')\">",
    "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
    "<DIV STYLE=\"width: expression(alert('XSS'));\">",
    "<IMG STYLE=\"xss:expr/*XSS*/ession(alert('XSS'))\">",
    "<BASE HREF=\"javascript:alert('XSS');//\">",
    "<OBJECT TYPE=\"text/x-scriptlet\" DATA=\"https://xss.invalid/scriptlet.html\"></OBJECT>",
    "<object data=\"javascript:alert(1)\">",
    "<EMBED SRC=\"data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9z"
    "dmciIG9ubG9hZD0iYWxlcnQoMSkiLz4=\" type=\"image/svg+xml\" AllowScriptAccess=\"always\">"
    "</EMBED>",
    "<SCRIPT a=\">\" SRC=\"https://xss.invalid/xss.js\"></SCRIPT>",
    "<A HREF=\"javascript:document.location='https://xss.invalid/'\">XSS</A>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
    "<form><button formaction=javascript:alert(1)>x</button></form>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)>",
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<select autofocus onfocus=alert(1)>",
    "<textarea autofocus onfocus=alert(1)>",
    "<keygen autofocus onfocus=alert(1)>",
    "<div onpointerover=alert(1)>hover</div>",
    "<x onclick=alert(1)>click",
    "<isindex type=image src=1 onerror=alert(1)>",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "<img src=x onerror=print()>",
    "<img src=x onerror=confirm(1)>",
    "<img src=x onerror=prompt(1)>",
    "<img src=\"x` `<script>alert(1)</script>\"` `>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<style>*{background:url(javascript:alert(1))}</style>",
    "<link rel=import href=data:text/html,<script>alert(1)</script>>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "\"><script>alert(1)</script>",
    "'><script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "--><script>alert(1)</script>",
    "</textarea><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "javascript&colon;alert(1)",
    "javascript:/*--></title></style></textarea></script><svg/onload='+/\"/+/onmouseover=1/"
    "+/[*/[]/+alert(1)//'>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//xss.invalid/%2F..",
    "/\\xss.invalid",
    "{{constructor.constructor('alert(1)')()}}",
    "${alert(1)}",
    "{{ 7|add:7 }}{% now \"Y\" %}",
    "%3Cscript%3Ealert(1)%3C/script%3E",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "';alert(1);//",
    "\";alert(1);//",
    "\\\";alert(1);//",
    f"{LS}alert(1){PS}",
    f"\"{LS}</script><script>alert(1)</script>",
]

WRAPPERS = [
    "{}",
    "\">{}",
    "'>{}",
    "</script>{}",
    LS + "{}" + PS,
    "Lamp {} shade",
]


def payloads() -> list[str]:
    """Every base vector in every context, upper-cased ones added; unique, in order."""
    found: dict[str, None] = {}
    for base in BASE:
        for wrapper in WRAPPERS:
            found[wrapper.format(base)] = None
        found[base.upper()] = None
    return list(found)


if __name__ == "__main__":
    OUT.write_text(json.dumps(payloads(), ensure_ascii=True, indent=0) + "\n")
    print(f"{len(payloads())} payloads -> {OUT}")
