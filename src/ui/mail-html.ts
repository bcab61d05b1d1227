/**
 * A quarantined message's HTML part, made inert for display. It is never put into a page: it is
 * served alone from /ui/quarantine/{id}/body with a CSP that forbids scripts, frames, fonts,
 * connections and (unless the reader asks) remote images, inside an `<iframe sandbox>` without
 * allow-scripts. On top of that, anything that could navigate is renamed: links lose their target
 * (the address stays visible as a tooltip), forms their action, meta refresh its effect.
 */
const NAVIGATING_ATTRS = /(<[^>]*?[\s/"'])(href|src\s*doc|action|formaction|xlink:href|ping|http-equiv|target)(\s*=)/gi;

export function inertHtml(html: string): string {
  return html
    .replace(/<a(?=[\s/>])([^>]*?)\shref\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, (_m, before: string, url: string) => {
      const shown = url.replace(/^["']|["']$/g, '').replace(/["'<>]/g, '');
      return `<a${before} title="${shown}" data-qe-href=${url}`;
    })
    .replace(NAVIGATING_ATTRS, (_m, pre: string, attr: string, eq: string) => `${pre}data-qe-${attr.replace(/\s+/g, '')}${eq}`);
}

/** The CSP of the body route: images only inline (data:) unless the reader chose to load them. */
export function bodyCsp(loadImages: boolean): string {
  return [
    "default-src 'none'",
    loadImages ? 'img-src data: https: http:' : 'img-src data:',
    "style-src 'unsafe-inline'",
    "frame-ancestors 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    'sandbox',
  ].join('; ');
}

/** Does the HTML refer to images that are not inline? (Offer "load images" only then.) */
export function hasRemoteImages(html: string): boolean {
  return /<img[^>]+src\s*=\s*["']?\s*(https?:)?\/\//i.test(html) || /url\(\s*["']?\s*(https?:)?\/\//i.test(html);
}
