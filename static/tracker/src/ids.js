/** Random identifiers: UUID v4 for events, visitors and sessions. */

/** A UUID v4 (crypto.randomUUID exists only on https pages; this works on any). */
export const uuid = () =>
  '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) =>
    (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16),
  );
