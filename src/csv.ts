/**
 * One CSV record as RFC 4180 writes it: fields joined by commas, a field quoted (with its quotes
 * doubled) when it holds a comma, a quote, CR or LF, and the record ended by CRLF. A text cell that
 * a spreadsheet would run as a formula (starting with = + - @, a tab or CR) gets a leading '
 * first. null is an empty field; numbers are written as they are.
 */
export function csvRow(cells: (string | number | null)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

function csvCell(v: string | number | null): string {
  if (v === null) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
