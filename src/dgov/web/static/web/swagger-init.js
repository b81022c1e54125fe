// Starts Swagger UI on the API docs page. Settings come from a JSON script element so that the
// page needs no inline script; unsafe requests carry the CSRF token, as session-authenticated
// calls from a browser must.
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function start() {
    var element = document.getElementById("swagger-settings");
    if (!element || typeof window.SwaggerUIBundle !== "function") {
      return;
    }
    var config = JSON.parse(element.textContent);
    config.dom_id = "#swagger-ui";
    config.presets = [window.SwaggerUIBundle.presets.apis];
    config.requestInterceptor = function (request) {
      var method = (request.method || "GET").toUpperCase();
      if (["GET", "HEAD", "OPTIONS", "TRACE"].indexOf(method) === -1) {
        var token = csrfToken();
        if (token) {
          request.headers["X-CSRFToken"] = token;
        }
      }
      return request;
    };
    window.dgovSwaggerUi = window.SwaggerUIBundle(config);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
