// Renders the service's own OpenAPI document with the vendored Swagger UI. "Try it out" sends
// requests to the origin this page came from (the spec's first server is the relative `/`), so it
// works directly against the service and through the gateway alike; "Authorize" takes a token.
"use strict";

window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: new URL("../openapi.yaml", location.href).toString(),
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: false,
    persistAuthorization: true,
  });
});
