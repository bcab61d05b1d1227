/**
 * One CSV record (RFC 4180): fields with a comma, quote, CR or LF are quoted, quotes doubled, the
 * record ends in CRLF. A text cell that a spreadsheet would read as a formula (it starts with =, +,
 * -, @, tab or CR) gets a leading apostrophe; numbers are written as numbers, null as an empty cell.
 */
export function csvRow(cells: (string | number | null)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

function csvCell(cell: string | number | null): string {
  if (cell === null) return '';
  let s = typeof cell === 'number' ? (Number.isFinite(cell) ? String(cell) : '') : cell;
  if (typeof cell === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
