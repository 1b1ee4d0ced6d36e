// Swagger UI over the registry's own OpenAPI document; the operations table stays for readers without JavaScript.
(function () {
  "use strict";
  var holder = document.getElementById("swagger-ui");
  if (!holder || typeof SwaggerUIBundle === "undefined") { return; }
  SwaggerUIBundle({
    url: holder.getAttribute("data-spec"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
  var table = document.getElementById("operations");
  if (table) { table.hidden = true; }
})();
