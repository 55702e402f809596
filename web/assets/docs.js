// The interactive API reference at /docs: Swagger UI (web/vendor/swagger-ui/, loaded by
// docs.html before this module) rendering the server's own OpenAPI document.

const { SwaggerUIBundle } = globalThis;

SwaggerUIBundle({
  url: "/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // The validator badge would fetch an image from validator.swagger.io: nothing leaves
  // this origin.
  validatorUrl: null,
});
