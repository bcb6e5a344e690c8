// Live updates for herd dashboard: one EventSource per page, fed by the server's single
// Kubernetes watch. The list redraws the row that changed; a WebService page reloads its own
// content once per change of its WebService (no polling). Text goes in with textContent only.
"use strict";
(function () {
  const banner = document.getElementById("problem");
  const lost = "Lost the connection to the dashboard's server: retrying";
  const source = new EventSource("/events");

  function show(message) {
    banner.hidden = !message;
    banner.textContent = message || "";
  }
  source.addEventListener("problem", (event) => show(JSON.parse(event.data).message));
  source.addEventListener("error", () => show(lost));
  source.addEventListener("open", () => {
    if (banner.textContent === lost) show(null);
  });

  const table = document.getElementById("webservices");
  if (table) {
    const fields = [...table.tHead.rows[0].cells].map((cell) => cell.dataset.field);
    source.addEventListener("webservice", (event) => redraw(JSON.parse(event.data)));

    function redraw(change) {
      const body = table.tBodies[0];
      let tr = [...body.rows].find((r) => r.dataset.key === change.key);
      if (change.type === "deleted") {
        if (tr) tr.remove();
      } else {
        if (!tr) {
          tr = document.createElement("tr");
          tr.dataset.key = change.key;
          const after = [...body.rows].find((r) => r.dataset.key > change.key);
          body.insertBefore(tr, after || null);
        }
        tr.replaceChildren(...fields.map((field) => cell(field, change.row)));
        tr.dataset.phase = change.row.phase;
      }
      document.getElementById("empty").hidden = body.rows.length > 0;
    }

    function cell(field, row) {
      const td = document.createElement("td");
      td.dataset.field = field;
      if (field === "name") {
        const a = document.createElement("a");
        a.href = row.href;
        a.textContent = row.name;
        td.append(a);
      } else {
        td.textContent = row[field];
      }
      return td;
    }
  }

  const own = document.body.dataset.key;
  const content = document.getElementById("content");
  if (own && content) {
    let loading = false;
    let again = false;
    source.addEventListener("webservice", (event) => {
      if (JSON.parse(event.data).key === own) reload();
    });
    // A live rollout's charts gain points while the WebService does not change (a pause, say):
    // the section says how often to ask again. One timer at most.
    let redraw = null;
    function scheduleRedraw() {
      clearTimeout(redraw);
      const charts = document.getElementById("prometheus-charts");
      const every = charts ? Number(charts.dataset.refreshSeconds) : 0;
      if (every) redraw = setTimeout(reload, every * 1000);
    }
    scheduleRedraw();

    // One request at a time; changes that arrive meanwhile cost one more, not one each.
    async function reload() {
      if (loading) {
        again = true;
        return;
      }
      loading = true;
      try {
        // The page's own address: after a refused action the location is the form's target.
        const url = document.body.dataset.href + "?fragment=true";
        const response = await fetch(url, {cache: "no-store"});
        if (response.ok) content.innerHTML = await response.text();
      } finally {
        loading = false;
        scheduleRedraw();
        if (again) {
          again = false;
          reload();
        }
      }
    }
  }
})();
