// Progressive enhancement for a page that follows a long task (the console's "verify now"): it
// fetches the task's status every second, updates the progress bar and its text, and goes on to
// the result when the task ends. Without script, the page's "Check progress" link does the same.
(function () {
  "use strict";
  var panel = document.querySelector("[data-progress-url]");
  if (!panel) {
    return;
  }
  var bar = panel.querySelector("progress");
  var text = panel.querySelector("[data-progress-text]");
  var url = panel.getAttribute("data-progress-url");

  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        return answer.ok ? answer.json() : null;
      })
      .then(function (status) {
        if (!status) {
          return;
        }
        if (status.state !== "running") {
          window.location.assign(status.next);
          return;
        }
        bar.max = Math.max(status.total, 1);
        bar.value = status.checked;
        text.textContent = status.checked + " of " + status.total + " events checked";
        window.setTimeout(tick, 1000);
      })
      .catch(function () {
        window.setTimeout(tick, 3000);
      });
  }

  window.setTimeout(tick, 300);
})();
