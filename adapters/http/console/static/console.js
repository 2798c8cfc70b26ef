/* Live deadline countdowns: every [data-deadline] element counts down (or up, once overdue) every second.
   The text is the server's own (see adapters/http/console/pages.py countdown()); the page is correct
   without this script. The server's clock (body[data-now]) is the reference, not the browser's. */
(function () {
  "use strict";
  var nodes = document.querySelectorAll("[data-deadline]");
  if (!nodes.length) { return; }
  var serverNow = Date.parse(document.body.getAttribute("data-now") || "");
  var offset = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function span(seconds) {
    var days = Math.floor(seconds / 86400), hours = Math.floor(seconds % 86400 / 3600);
    var minutes = Math.floor(seconds % 3600 / 60), secs = seconds % 60;
    if (days) { return [days + "天" + (hours ? hours + "小时" : ""), days + " d" + (hours ? " " + hours + " h" : "")]; }
    if (hours) { return [hours + "小时" + (minutes ? minutes + "分" : ""), hours + " h" + (minutes ? " " + minutes + " min" : "")]; }
    if (minutes) { return [minutes + "分", minutes + " min"]; }
    return [secs + "秒", secs + " s"];
  }

  function countdown(deadline, now) {
    var left = (deadline - now) / 1000, text;
    if (left >= 0) {
      text = span(Math.floor(left));
      return ["剩余 " + text[0] + " / " + text[1] + " left", false];
    }
    text = span(Math.floor(-left));
    return ["已超时 " + text[0] + " / " + text[1] + " overdue", true];
  }

  function tick() {
    var now = Date.now() + offset;
    for (var i = 0; i < nodes.length; i++) {
      var deadline = Date.parse(nodes[i].getAttribute("data-deadline"));
      if (isNaN(deadline)) { continue; }
      var shown = countdown(deadline, now);
      if (nodes[i].textContent !== shown[0]) { nodes[i].textContent = shown[0]; }
      nodes[i].classList.toggle("overdue", shown[1]);
    }
  }

  tick();
  window.setInterval(tick, 1000);
}());
