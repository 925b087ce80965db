// Go's %q for a string (strconv.Quote): what Go error messages use around names and values. Not the
// same as json.Marshal of a string (shared/go/json.ts marshalString): %q escapes every non-ASCII
// character and leaves <, >, & alone; Marshal does the opposite.

/** Go's %q for a plain string: `goQuote('é<')` is `"\u00e9<"`. */
export function goQuote(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
