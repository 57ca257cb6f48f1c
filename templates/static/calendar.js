// Live availability for the week calendar (progressive enhancement: the page works without it).
// Listens to the resource's server-sent events and, when its availability changes, fetches the
// page again and swaps the calendar in place; a polite live region tells screen-reader users.
(function () {
  "use strict";
  var cal = document.getElementById("calendar");
  if (!cal || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var url = cal.getAttribute("data-events");
  var status = document.getElementById("calendar-status");
  var busy = false;
  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        busy = false;
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("calendar");
        if (!fresh) { return; }
        var focused = document.activeElement && document.activeElement.value;
        cal.innerHTML = fresh.innerHTML;
        cal.setAttribute("data-version", String(Date.now()));
        if (focused) {
          var again = cal.querySelector('button[value="' + focused + '"]');
          if (again) { again.focus(); }
        }
        if (status) { status.textContent = status.getAttribute("data-updated") || ""; }
      })
      .catch(function () { busy = false; });
  }
  var es = new EventSource(url);
  es.addEventListener("changed", refresh);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { refresh(); }
  });
}());
