import { createContext, useContext } from 'hono/jsx';
import { wordsFor, type Words } from '../digest/wording.ts';

/**
 * The reader of a page: a mailbox owner's words and saved time zone (src/digest/reader.ts), English
 * and the browser's zone for admins. Set once per request (src/ui/routes.tsx) around every page,
 * so a component reads it with usePage() instead of each page passing it down.
 */
export interface PageReader {
  w: Words;
  /** the owner's saved zone: times are written in it on the server; null: UTC, and the script shows the browser's */
  timeZone: string | null;
}

export const ENGLISH: PageReader = { w: wordsFor('en'), timeZone: null };
export const PageContext = createContext<PageReader>(ENGLISH);
export const usePage = () => useContext(PageContext);
