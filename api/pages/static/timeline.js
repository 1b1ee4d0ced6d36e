// Draws the timeline chart over the table's rows; without JavaScript the table alone remains.
(function () {
  "use strict";
  var holder = document.getElementById("timeline-chart");
  var source = document.getElementById("timeline-data");
  if (!holder || !source || typeof vis === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  if (!data.items.length) { return; }
  holder.hidden = false;
  document.getElementById("chart-help").hidden = false;
  var first = data.day, last = data.day;
  data.items.forEach(function (item) {
    if (item.start < first) { first = item.start; }
    if ((item.end || item.start) > last) { last = item.end || item.start; }
  });
  var pad = Math.max((Date.parse(last) - Date.parse(first)) / 20, 30 * 864e5);
  var items = new vis.DataSet(data.items);
  var groups = new vis.DataSet(data.groups);
  var chart = new vis.Timeline(holder, items, groups, {
    stack: true,
    start: new Date(Date.parse(first) - pad),
    end: new Date(Date.parse(last) + pad),
    zoomKey: "ctrlKey",
    horizontalScroll: true,
    orientation: { axis: "top" },
    margin: { item: 6 },
    tooltip: { followMouse: true }
  });
  chart.addCustomTime(data.day, "as-of");
  chart.setCustomTimeTitle("as of " + data.day, "as-of");
  holder.setAttribute("data-ready", "true");
})();
