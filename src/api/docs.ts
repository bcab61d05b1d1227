/**
 * GET /docs: Swagger UI for /openapi.json, pinned. The page is on the same origin as the page
 * sessions, so the third-party code it loads is one fixed version (swagger-ui-dist, the exact version
 * in package.json's devDependencies) with Subresource Integrity: a changed file on the CDN is refused
 * by the browser, not run. The CSP allows scripts and styles only from that CDN and this origin (the
 * start-up script is /docs/init.js, nothing inline), and requests only to this origin.
 * A unit test recomputes the hashes from node_modules/swagger-ui-dist: after upgrading it, put the
 * test's printed values here.
 */
export const SWAGGER_UI_VERSION = '5.35.0';
const BASE = `https://cdn.jsdelivr.net/npm/swagger-ui-dist@${SWAGGER_UI_VERSION}`;
export const SWAGGER_UI_ASSETS = {
  'swagger-ui-bundle.js': 'sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9',
  'swagger-ui.css': 'sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I',
} as const;

export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self' https://cdn.jsdelivr.net",
  'style-src https://cdn.jsdelivr.net',
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quarantine-edge API</title>
<link rel="stylesheet" href="${BASE}/swagger-ui.css" integrity="${SWAGGER_UI_ASSETS['swagger-ui.css']}" crossorigin="anonymous">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${BASE}/swagger-ui-bundle.js" integrity="${SWAGGER_UI_ASSETS['swagger-ui-bundle.js']}" crossorigin="anonymous"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

export const DOCS_INIT_JS = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });
});
`;

export const DOCS_HEADERS = {
  'content-security-policy': DOCS_CSP,
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
};
