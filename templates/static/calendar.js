// Live availability for the week calendar (progressive enhancement: the page works without it).
// Listens to the resource's server-sent events and, when its availability changes, fetches the
// calendar again (its own address, in data-url) and swaps in only the days' slot lists: what the
// resident chose or typed in the booking form stays, and so does the focus on a slot that is
// still there. A polite live region tells screen-reader users.
(function () {
  "use strict";
  var cal = document.getElementById("calendar");
  if (!cal || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var events = cal.getAttribute("data-events");
  var url = cal.getAttribute("data-url") || window.location.href;
  var status = document.getElementById("calendar-status");
  var busy = false;
  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        busy = false;
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var focused = document.activeElement && cal.contains(document.activeElement)
          ? document.activeElement.getAttribute("value") : null;
        var changed = false;
        cal.querySelectorAll("section[data-day]").forEach(function (day) {
          var fresh = doc.querySelector('section[data-day="' + day.getAttribute("data-day") + '"]');
          if (fresh && fresh.innerHTML !== day.innerHTML) {
            day.innerHTML = fresh.innerHTML;
            changed = true;
          }
        });
        if (focused) {
          var again = cal.querySelector('button[value="' + focused + '"]');
          if (again && document.activeElement !== again) { again.focus(); }
        }
        if (changed && status) { status.textContent = status.getAttribute("data-updated") || ""; }
      })
      .catch(function () { busy = false; });
  }
  var es = new EventSource(events);
  es.addEventListener("changed", refresh);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { refresh(); }
  });
}());
