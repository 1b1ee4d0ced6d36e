// RapiDoc over the registry's own OpenAPI document, with a console to try each operation;
// the operations table stays for readers without JavaScript.
(function () {
  "use strict";
  var holder = document.getElementById("api-reference");
  if (!holder || !window.customElements || !customElements.get("rapi-doc")) { return; }
  var reference = document.createElement("rapi-doc");
  var settings = {
    "spec-url": holder.getAttribute("data-spec"),
    "render-style": "view",
    "layout": "column",
    "theme": "light",
    "show-header": "false",
    "show-info": "false",
    "allow-spec-url-load": "false",
    "allow-spec-file-load": "false",
    "allow-server-selection": "false",
    "load-fonts": "false",  // its default font comes from elsewhere; the page's own fonts are used
    "regular-font": "system-ui, -apple-system, \"Segoe UI\", Roboto, Arial, sans-serif",
    "mono-font": "ui-monospace, Menlo, Consolas, monospace",
    "primary-color": "#0b4f9c"
  };
  Object.keys(settings).forEach(function (name) { reference.setAttribute(name, settings[name]); });
  holder.appendChild(reference);
  var table = document.getElementById("operations");
  if (table) { table.hidden = true; }
})();
