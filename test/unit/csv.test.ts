// src/csv.ts: RFC 4180 records, and cells a spreadsheet would run as formulas made inert.
import { describe, expect, it } from 'vitest';
import { csvRow } from '../../src/csv.ts';

/** An RFC 4180 reader, to read back what csvRow wrote. */
function parse(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') row.push(cell), (cell = '');
    else if (ch === '\r' && text[i + 1] === '\n') row.push(cell), rows.push(row), (row = []), (cell = ''), i++;
    else cell += ch;
  }
  return rows;
}

describe('csvRow', () => {
  it('quotes what needs quoting, doubles quotes, ends with CRLF', () => {
    expect(csvRow(['a', 'b c', 1, null, 2.5])).toBe('a,b c,1,,2.5\r\n');
    expect(csvRow(['x,y', 'say "hi"', 'two\nlines', 'cr\rhere'])).toBe('"x,y","say ""hi""","two\nlines","cr\rhere"\r\n');
    expect(csvRow([])).toBe('\r\n');
  });

  it('makes formulas inert: = + - @ tab CR at the start get a leading apostrophe (numbers stay numbers)', () => {
    expect(csvRow(['=1+1', '+cmd', '-2', '@SUM(A1)', '\tx', '\rx', 'a=b', -3])).toBe("'=1+1,'+cmd,'-2,'@SUM(A1),'\tx,\"'\rx\",a=b,-3\r\n");
    expect(csvRow(['=HYPERLINK("http://evil.example","click")'])).toBe('"\'=HYPERLINK(""http://evil.example"",""click"")"\r\n');
  });

  it('reads back as written (but for the apostrophe)', () => {
    const cells = ['plain', 'comma, inside', '"quoted"', 'line\r\nbreak', 'Ünïcödé 🎉', '', '=danger'];
    expect(parse(csvRow(cells) + csvRow(['second']))).toEqual([[...cells.slice(0, 6), "'=danger"], ['second']]);
  });
});
