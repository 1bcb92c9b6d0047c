"""The director map's edit mode (issue 17): hand edits on ``map.html``, saved as ``edits.json``.

An "Edit turfs" button on the director map (off by default: the map looks as without it) opens a
panel. Clicking a door selects it; the panel then offers to move *this door*, *this side of the
street* (odd or even numbers) in its turf, or *the whole street* in its turf to a target turf
(turfs of the same precinct listed first), to *lock* its turf, or to *exclude* its street (with
an optional note). A *lasso* draws a freehand polygon (map dragging off while drawing): the doors
inside are selected and can be moved together. Each edit recolours the moved doors in their new
turf's colour; the panel shows the touched turfs' live door counts, minutes and balance
(coloured when outside the cut's tolerance); *undo last* takes back the last edit; *save edits*
downloads ``edits.json`` in the format of ``docs/edits.md``, which ``knockin-geo edit`` applies.

Everything runs in the page (no server, no network). The lasso is hand-written (ray-casting
point in polygon on the doors' screen positions): no plugin on PyPI ships one without a heavy
framework. Every input-derived text (street names, numbers, turf ids, notes) is put in the page
with ``textContent`` or as an option's text, never parsed as HTML.

The figures: a turf's minutes are its routed minutes (``est_minutes``), spread evenly over its
doors (``minutes / doors`` per door), so a turf's live minutes are the sum over its current doors;
its balance is read on what the report's ``balance_measured_on`` names (minutes, or the doors'
weights: households or doors), against the turf's target (``measure / (1 + deviation)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import folium
import numpy as np
import pandas as pd
from branca.element import MacroElement, Template
from markupsafe import Markup

from knockin_geo import schema

if TYPE_CHECKING:
    from knockin_geo.model import TurfPlan

#: The turfs table's column that marks a locked turf (written by ``knockin-geo edit``).
LOCKED = schema.LOCKED


def locked_mask(turfs: pd.DataFrame) -> np.ndarray:
    """Which turfs hand edits locked (the :data:`LOCKED` column; none without it)."""
    if LOCKED not in turfs.columns:
        return np.zeros(len(turfs), dtype=bool)
    return turfs[LOCKED].fillna(False).astype(bool).to_numpy()


def edit_data(plan: TurfPlan) -> dict[str, Any]:
    """Return what the edit mode needs beyond the door layer: one entry per turf, and the rule.

    Turfs are in the door layer's order (sorted turf ids of the assigned doors: a door's style
    index is its turf's index here).

    Parameters
    ----------
    plan
        The plan the director map shows.

    Returns
    -------
    dict
        ``turfs`` (ids), ``precinct``, ``doors``, ``minutes`` (routed), ``measure`` and
        ``target`` (the balance figure and its target), ``locked`` (ids), ``tolerance``,
        ``unit`` (the report's ``balance_measured_on``), ``on_minutes``, and ``w`` (each door's
        weight, in the door layer's order; None when every weight is 1).
    """
    doors = plan.doors
    assigned = doors[doors[schema.TURF_ID].notna()]
    tid = assigned[schema.TURF_ID].astype(str)
    ids = sorted(set(tid))
    turfs = plan.turfs.copy()
    turfs.index = turfs.index.astype(str)
    t = turfs.reindex(ids)
    count = tid.value_counts().reindex(ids).fillna(0).to_numpy(dtype=int)
    minutes = pd.to_numeric(t["est_minutes"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    unit = str(plan.report.get("summary", {}).get("balance_measured_on", "doors"))
    on_minutes = "minutes" in unit
    w = (pd.to_numeric(assigned["weight"], errors="coerce").fillna(1.0).to_numpy(dtype=float)
         if "weight" in assigned.columns else np.ones(len(assigned)))
    measure = minutes if on_minutes else (
        pd.Series(w, index=tid.to_numpy()).groupby(level=0).sum().reindex(ids).to_numpy(dtype=float)
    )
    dev = pd.to_numeric(t.get("deviation", pd.Series(0.0, index=t.index)), errors="coerce")
    dev = dev.fillna(0.0).to_numpy(dtype=float)
    target = np.where(dev > -1, measure / np.where(dev > -1, 1 + dev, 1), measure)
    locked = t.index[locked_mask(t)].tolist()
    return {
        "turfs": ids,
        "precinct": [str(p) for p in t[schema.PRECINCT_ID].fillna("").tolist()],
        "doors": count.tolist(),
        "minutes": np.round(minutes, 3).tolist(),
        "measure": np.round(measure, 3).tolist(),
        "target": np.round(target, 3).tolist(),
        "locked": locked,
        "tolerance": float(plan.report.get("params", {}).get("tolerance", 0.1)),
        "unit": unit,
        "on_minutes": on_minutes,
        "w": None if np.all(w == 1) else np.round(w, 3).tolist(),
    }


class EditMode(MacroElement):
    """The edit mode of a director map: ``EditMode(doors_layer, data_json).add_to(m)``.

    ``doors_layer`` is the map's door layer (its points carry address ids, streets, numbers and
    turfs); ``data_json`` is :func:`edit_data` as JSON safe in a ``<script>``.
    """

    _template = Template(
        "{% macro header(this, kwargs) %}<style>" + "{{ this.css }}" + "</style><script>"
        "{{ this.js }}</script>{% endmacro %}"
        "{% macro script(this, kwargs) %}\nkgEditMode({{ this._parent.get_name() }}, "
        "{{ this.doors.get_name() }}, {{ this.data }});\n{% endmacro %}"
    )

    def __init__(self, doors: folium.map.Layer, data_json: str) -> None:
        super().__init__()
        self._name = "EditMode"
        self.doors = doors
        self.data = Markup(data_json)
        self.js = Markup(EDIT_JS)
        self.css = Markup(EDIT_CSS)


EDIT_CSS = """.kg-edit{background:#fff;border:1px solid #888;border-radius:4px;
font:13px/1.35 sans-serif;box-shadow:0 1px 5px rgba(0,0,0,.35);max-width:350px}
.kg-edit button{font:inherit;margin:2px 2px 2px 0;padding:4px 8px;cursor:pointer;
border:1px solid #888;border-radius:3px;background:#f4f4f4}
.kg-edit button:disabled{opacity:.45;cursor:default}
.kg-edit .kg-edit-toggle{font-weight:600;margin:0;border:0;width:100%;text-align:left}
.kg-edit.kg-on .kg-edit-toggle{background:#1565c0;color:#fff}
.kg-edit .kg-active{background:#1565c0;color:#fff}
.kg-edit-panel{padding:6px 8px;max-height:75vh;overflow:auto}
.kg-edit-hint,.kg-edit-msg{color:#444;margin:4px 0}
.kg-edit-msg.kg-bad{color:#b00020;font-weight:600}
.kg-edit-sel{border-top:1px solid #ddd;border-bottom:1px solid #ddd;margin:6px 0;padding:4px 0}
.kg-edit-what{font-weight:600}
.kg-edit-sel label{display:block;margin:2px 0}
.kg-edit-sel select{font:inherit;max-width:220px}
.kg-edit-sel input[type=text]{font:inherit;width:150px}
.kg-edit-live{border-collapse:collapse;margin-top:4px;width:100%}
.kg-edit-live th,.kg-edit-live td{padding:2px 4px;border-bottom:1px solid #eee;text-align:right}
.kg-edit-live th:first-child,.kg-edit-live td:first-child{text-align:left}
.kg-edit-live td.kg-out{background:#fde0e0;color:#b00020;font-weight:600}
.kg-edit-swatch{display:inline-block;width:10px;height:10px;border-radius:50%;
margin-right:4px;vertical-align:-1px}
.kg-edit-list{margin:4px 0 0 18px;padding:0;color:#333}
.leaflet-container.kg-drawing{cursor:crosshair;touch-action:none}"""


#: The edit mode's code (no ``{{``, ``{%`` nor ``{#``: branca compiles the page's parts as Jinja).
EDIT_JS = r"""function kgEditMode(map, doors, data) {
  "use strict";
  var D = doors._d, n = doors.kgCount, T = data.turfs.length;
  function field(label) { return D.fields.filter(function (f) { return f.label === label; })[0]; }
  var turfF = field("turf"), numF = field("no."), streetF = field("street");
  var EXCL = D.styles.length;
  D.styles.push({color: "#555", fillColor: "#fff", radius: 3, weight: 1, fillOpacity: 1});
  turfF.table.push("excluded by the director");
  doors.kgRestyle();
  var byId = {};
  data.turfs.forEach(function (t, k) { byId[t] = k; });
  function norm(s) {
    return s.normalize("NFC").replace(/\s+/g, " ").trim().toLowerCase()
      .replace(/\u00df/g, "ss").replace(/\u03c2/g, "\u03c3");
  }
  var keys = streetF.table.map(norm);
  var orig = Int32Array.from(D.s), cur = Int32Array.from(D.s);
  var perMin = new Float64Array(n), par = [];
  for (var i0 = 0; i0 < n; i0++) {
    var t0 = orig[i0];
    perMin[i0] = data.doors[t0] ? data.minutes[t0] / data.doors[t0] : 0;
    var m0 = /^\s*(\d+)/.exec(numF.text[i0]);
    par.push(m0 ? (Number(m0[1].slice(-1)) % 2 ? "odd" : "even") : null);
  }
  function street(i) { return streetF.table[streetF.index[i]]; }
  function key(i) { return keys[streetF.index[i]]; }
  function id(i) { return D.ids[i]; }
  function color(t) { return t < 0 ? "#fff" : D.styles[t].fillColor; }
  var S = {on: false, edits: [], history: [], touched: new Set(), sel: null,
           drawing: false, saved: true, drewAt: 0, locked: new Set()};
  data.locked.forEach(function (t) { if (t in byId) { S.locked.add(byId[t]); } });

  function totals() {
    var c = new Int32Array(T), mins = new Float64Array(T), meas = new Float64Array(T);
    for (var i = 0; i < n; i++) {
      var t = cur[i];
      if (t < 0) { continue; }
      c[t] += 1; mins[t] += perMin[i];
      meas[t] += data.on_minutes ? perMin[i] : (data.w ? data.w[i] : 1);
    }
    return {doors: c, minutes: mins, measure: meas};
  }
  function deviation(live, t) {
    var target = data.target[t];
    return target > 0 ? live / target - 1 : 0;
  }

  // ---- the panel (every text set with textContent) ----
  function el(tag, cls, text, parent) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  var box = el("div", "kg-edit leaflet-bar");
  var toggle = el("button", "kg-edit-toggle", "\u270e Edit turfs", box);
  toggle.type = "button"; toggle.title = "Move doors between turfs, lock turfs, exclude streets";
  var panel = el("div", "kg-edit-panel", undefined, box);
  panel.hidden = true;
  var tools = el("div", "", undefined, panel);
  var lassoB = el("button", "", "Lasso", tools);
  lassoB.title = "Draw around doors with the mouse or a finger";
  var undoB = el("button", "", "Undo last", tools);
  var saveB = el("button", "", "Save edits (0)", tools);
  var hint = el("div", "kg-edit-hint",
                "Click a door, or draw a lasso around doors, then choose a target turf.", panel);
  var sel = el("div", "kg-edit-sel", undefined, panel);
  sel.hidden = true;
  var what = el("div", "kg-edit-what", "", sel);
  var scopes = el("div", "", undefined, sel);
  var scopeInputs = {};
  [["door", "this door"], ["side", "this side of the street"],
   ["street", "the whole street"]].forEach(function (c) {
    var lab = el("label", "", undefined, scopes), r = el("input", "", undefined, lab);
    r.type = "radio"; r.name = "kg-edit-scope"; r.value = c[0];
    r.addEventListener("change", refresh);
    scopeInputs[c[0]] = {input: r, text: el("span", "", " " + c[1], lab)};
  });
  var moveRow = el("label", "", "Move to ", sel), target = el("select", "", undefined, moveRow);
  target.addEventListener("change", refresh);
  var moveB = el("button", "", "Move", sel);
  var lockB = el("button", "", "Lock this turf", sel);
  var exRow = el("div", "", undefined, sel);
  var noteIn = el("input", "", undefined, exRow);
  noteIn.type = "text"; noteIn.placeholder = "note (optional)";
  var exB = el("button", "", "Exclude this street", exRow);
  var msg = el("div", "kg-edit-msg", "", panel);
  msg.setAttribute("role", "status");
  var live = el("table", "kg-edit-live", undefined, panel);
  var listTitle = el("div", "kg-edit-hint", "", panel);
  var list = el("ol", "kg-edit-list", undefined, panel);

  var Ctl = L.Control.extend({options: {position: "topleft"}, onAdd: function () { return box; }});
  new Ctl().addTo(map);
  L.DomEvent.disableClickPropagation(box);
  L.DomEvent.disableScrollPropagation(box);
  var marks = L.layerGroup().addTo(map);

  function say(text, bad) {
    msg.textContent = text; msg.className = "kg-edit-msg" + (bad ? " kg-bad" : "");
  }
  function scope() {
    for (var k in scopeInputs) { if (scopeInputs[k].input.checked) { return k; } }
    return "door";
  }
  function selected() {
    if (!S.sel) { return []; }
    if (S.sel.kind === "lasso") { return S.sel.idx.filter(function (j) { return cur[j] >= 0; }); }
    var i = S.sel.i, t = cur[i], sc = scope(), k = key(i), out = [];
    if (sc === "door") { return [i]; }
    for (var j = 0; j < n; j++) {
      if (cur[j] === t && key(j) === k && (sc === "street" || par[j] === par[i])) { out.push(j); }
    }
    return out;
  }
  function sourceTurfs(idx) {
    var seen = new Map();
    idx.forEach(function (j) {
      if (cur[j] >= 0) { seen.set(cur[j], (seen.get(cur[j]) || 0) + 1); }
    });
    return Array.from(seen.entries()).sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; });
  }
  function fillTargets(src, tot) {
    var keep = target.value, pr = src >= 0 ? data.precinct[src] : null;
    target.textContent = "";
    var near = el("optgroup", "", undefined, target), far = el("optgroup", "", undefined, target);
    near.label = "same precinct"; far.label = "other precincts";
    for (var t = 0; t < T; t++) {
      var o = el("option", "", data.turfs[t] + " \u00b7 " + tot.doors[t] + " doors \u00b7 " +
                 Math.round(tot.minutes[t]) + " min" + (S.locked.has(t) ? " \u00b7 locked" : ""),
                 data.precinct[t] === pr ? near : far);
      o.value = data.turfs[t];
      o.disabled = S.locked.has(t);
    }
    if (!near.children.length) { target.removeChild(near); }
    if (!far.children.length) { target.removeChild(far); }
    var ok = keep in byId && !S.locked.has(byId[keep]) && byId[keep] !== src;
    if (!ok) {
      var first = Array.prototype.filter.call(target.options, function (o) {
        return !o.disabled && byId[o.value] !== src;
      })[0];
      keep = first ? first.value : "";
    }
    target.value = keep;
  }
  function liveRows(tot, extra) {
    live.textContent = "";
    var rows = new Set(S.touched);
    extra.forEach(function (t) { if (t >= 0) { rows.add(t); } });
    if (!rows.size) { return; }
    var head = live.createTHead().insertRow();
    ["turf", "doors", "minutes", "balance"].forEach(function (h) { el("th", "", h, head); });
    var body = live.createTBody(), base = {doors: data.doors, minutes: data.minutes};
    Array.from(rows).sort(function (a, b) { return a - b; }).forEach(function (t) {
      var tr = body.insertRow(), c0 = tr.insertCell(-1);
      el("span", "kg-edit-swatch", undefined, c0).style.background = color(t);
      var lockMark = S.locked.has(t) ? " (locked)" : "";
      c0.appendChild(document.createTextNode(data.turfs[t] + lockMark));
      tr.insertCell(-1).textContent = base.doors[t] + " \u2192 " + tot.doors[t];
      tr.insertCell(-1).textContent = Math.round(base.minutes[t]) + " \u2192 " +
        Math.round(tot.minutes[t]);
      var dv = deviation(tot.measure[t], t), c3 = tr.insertCell(-1);
      c3.textContent = (dv >= 0 ? "+" : "") + (100 * dv).toFixed(1) + " %";
      if (Math.abs(dv) > data.tolerance + 1e-9) {
        c3.className = "kg-out";
        c3.title = "outside the tolerance (\u00b1" + Math.round(100 * data.tolerance) +
          " % on " + data.unit + ")";
      }
    });
  }
  function refresh() {
    var tot = totals(), idx = selected(), src = sourceTurfs(idx);
    saveB.textContent = "Save edits (" + S.edits.length + ")";
    saveB.disabled = !S.edits.length;
    undoB.disabled = !S.edits.length;
    lassoB.className = S.drawing ? "kg-active" : "";
    marks.clearLayers();
    idx.forEach(function (j) {
      L.circleMarker(doors.kgLatLng(j), {radius: 7, color: "#111", weight: 2, fill: false,
                                         interactive: false}).addTo(marks);
    });
    sel.hidden = !S.sel;
    var main = src.length ? src[0][0] : -1;
    if (S.sel) {
      var lasso = S.sel.kind === "lasso";
      scopes.hidden = lasso; lockB.hidden = lasso; exRow.hidden = lasso;
      if (lasso) {
        what.textContent = idx.length + " doors in the lasso (" + src.map(function (s) {
          return data.turfs[s[0]] + ": " + s[1];
        }).join(", ") + ")";
      } else {
        var i = S.sel.i, p = par[i];
        what.textContent = numF.text[i] + " " + street(i) + " \u00b7 turf " + data.turfs[cur[i]];
        scopeInputs.side.input.disabled = !p;
        scopeInputs.side.text.textContent = " this side of the street" + (p ? " (" + p + ")" : "") +
          " in " + data.turfs[cur[i]];
        scopeInputs.street.text.textContent = " the whole street in " + data.turfs[cur[i]];
        lockB.textContent = "Lock turf " + data.turfs[cur[i]];
        lockB.disabled = S.locked.has(cur[i]);
      }
      fillTargets(main, tot);
      moveB.disabled = !idx.length || !target.value;
    }
    liveRows(tot, S.sel ? [main, target.value in byId ? byId[target.value] : -1] : []);
    listTitle.textContent = S.edits.length ? S.edits.length + " edit(s)" +
      (S.saved ? ", saved" : ", not saved yet") : "";
    list.textContent = "";
    S.edits.forEach(function (e) { el("li", "", describe(e), list); });
  }
  function describe(e) {
    if (e.op === "move_doors") { return "move " + e.doors.length + " door(s) to " + e.to; }
    if (e.op === "move_street") {
      return "move " + e.street + " (" + e.side + ") from " + e.from + " to " + e.to;
    }
    if (e.op === "lock") { return "lock " + e.turf + " (" + e.doors.length + " doors)"; }
    return "exclude " + e.street + (e.note ? " \u2014 " + e.note : "");
  }
  function restyle() {
    for (var i = 0; i < n; i++) {
      var t = cur[i] < 0 ? EXCL : cur[i];
      D.s[i] = t; turfF.index[i] = t;
    }
    doors.kgRestyle();
  }
  function record(edit, idx, to, lockTurf) {
    S.history.push({cur: cur.slice(), locked: new Set(S.locked), touched: new Set(S.touched)});
    idx.forEach(function (j) { if (cur[j] >= 0) { S.touched.add(cur[j]); } cur[j] = to; });
    if (to >= 0) { S.touched.add(to); }
    if (lockTurf !== undefined) { S.locked.add(lockTurf); S.touched.add(lockTurf); }
    S.edits.push(edit); S.saved = false; S.sel = null;
    restyle(); refresh();
    say("Done: " + describe(edit) + ".");
  }
  function lockedAmong(idx) {
    for (var k = 0; k < idx.length; k++) { if (S.locked.has(cur[idx[k]])) { return cur[idx[k]]; } }
    return -1;
  }
  function ids(idx) { return idx.map(id).sort(); }

  moveB.addEventListener("click", function () {
    var to = byId[target.value], idx = selected(), lk = lockedAmong(idx);
    if (to === undefined) { return say("Choose a target turf.", true); }
    if (S.locked.has(to)) { return say("Turf " + data.turfs[to] + " is locked.", true); }
    if (lk >= 0) { return say("Turf " + data.turfs[lk] + " is locked: its doors stay.", true); }
    idx = idx.filter(function (j) { return cur[j] !== to; });
    if (!idx.length) { return say("These doors are already in " + data.turfs[to] + ".", true); }
    var sc = scope(), edit;
    if (S.sel.kind === "door" && sc !== "door") {
      var i = S.sel.i;
      edit = {op: "move_street", street: street(i), side: sc === "street" ? "both" : par[i],
              from: data.turfs[cur[i]], to: data.turfs[to]};
    } else {
      edit = {op: "move_doors", doors: ids(idx), to: data.turfs[to]};
    }
    record(edit, idx, to);
  });
  lockB.addEventListener("click", function () {
    var t = cur[S.sel.i], idx = [];
    if (S.locked.has(t)) { return; }
    for (var j = 0; j < n; j++) { if (cur[j] === t) { idx.push(j); } }
    record({op: "lock", turf: data.turfs[t], doors: ids(idx)}, [], -1, t);
  });
  exB.addEventListener("click", function () {
    var k = key(S.sel.i), idx = [];
    for (var j = 0; j < n; j++) { if (cur[j] >= 0 && key(j) === k) { idx.push(j); } }
    var lk = lockedAmong(idx);
    if (lk >= 0) { return say("Turf " + data.turfs[lk] + " is locked: its doors stay.", true); }
    var edit = {op: "exclude_street", street: street(S.sel.i)}, note = noteIn.value.trim();
    if (note) { edit.note = note; }
    noteIn.value = "";
    record(edit, idx, -1);
  });
  undoB.addEventListener("click", function () {
    var h = S.history.pop();
    if (!h) { return; }
    var e = S.edits.pop();
    cur = h.cur; S.locked = h.locked; S.touched = h.touched; S.sel = null; S.saved = false;
    restyle(); refresh();
    say("Undone: " + describe(e) + ".");
  });
  saveB.addEventListener("click", function () {
    var out = {format: "knockin-geo-edits", version: 1, made_with: "map.html", edits: S.edits};
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([JSON.stringify(out, null, 2) + "\n"],
                                          {type: "application/json"}));
    a.download = "edits.json";
    document.body.appendChild(a); a.click(); a.remove();
    S.saved = true; refresh();
    say("edits.json saved (" + S.edits.length + " edits). Apply it with: knockin-geo edit " +
        "--plan <plan folder> --edits edits.json");
  });
  toggle.addEventListener("click", function () {
    S.on = !S.on; panel.hidden = !S.on;
    box.classList.toggle("kg-on", S.on);
    if (!S.on) { S.sel = null; setDrawing(false); }
    refresh();
  });
  window.addEventListener("beforeunload", function (e) {
    if (S.edits.length && !S.saved) { e.preventDefault(); e.returnValue = ""; }
  });
  map.on("popupopen", function (e) { if (S.on) { map.closePopup(e.popup); } });
  var container = map.getContainer(), downAt = null;
  // DOM events on the map's element: a click on a turf (canvas) does not reach the map's "click"
  container.addEventListener("pointerdown", function (ev) {
    downAt = [ev.clientX, ev.clientY];
  }, true);
  container.addEventListener("click", function (ev) {
    if (!S.on || S.drawing || Date.now() - S.drewAt < 400 || !downAt ||
        ev.target.closest(".leaflet-control") ||
        Math.abs(ev.clientX - downAt[0]) + Math.abs(ev.clientY - downAt[1]) > 6) { return; }
    var i = doors.kgNearest(map.mouseEventToContainerPoint(ev));
    if (i >= 0 && cur[i] < 0) { i = -1; }
    S.sel = i < 0 ? null : {kind: "door", i: i};
    if (i >= 0) { scopeInputs.door.input.checked = true; }
    say(""); refresh();
  });

  // ---- the lasso: a freehand polygon; the doors drawn inside it are selected ----
  var pts = null, line = null;
  function setDrawing(on) {
    S.drawing = on;
    // the map stays still while drawing: the lasso is tested on the doors' screen positions
    ["dragging", "scrollWheelZoom", "doubleClickZoom", "touchZoom"].forEach(function (h) {
      if (map[h]) { map[h][on ? "disable" : "enable"](); }
    });
    L.DomUtil[on ? "addClass" : "removeClass"](container, "kg-drawing");
  }
  lassoB.addEventListener("click", function () {
    setDrawing(!S.drawing); refresh();
    if (S.drawing) { say("Draw around the doors: press, move, release."); }
  });
  function inside(x, y, poly) {
    var c = false;
    for (var a = 0, b = poly.length - 1; a < poly.length; b = a++) {
      var pa = poly[a], pb = poly[b];
      if ((pa.y > y) !== (pb.y > y) && x < (pb.x - pa.x) * (y - pa.y) / (pb.y - pa.y) + pa.x) {
        c = !c;
      }
    }
    return c;
  }
  container.addEventListener("pointerdown", function (ev) {
    if (!S.drawing || box.contains(ev.target)) { return; }
    ev.preventDefault(); ev.stopPropagation();
    pts = [map.mouseEventToContainerPoint(ev)];
    line = L.polyline([map.containerPointToLatLng(pts[0])], {color: "#111", weight: 2,
                      dashArray: "5 5", interactive: false}).addTo(map);
    container.setPointerCapture(ev.pointerId);
  }, true);
  container.addEventListener("pointermove", function (ev) {
    if (!pts) { return; }
    var p = map.mouseEventToContainerPoint(ev);
    pts.push(p); line.addLatLng(map.containerPointToLatLng(p));
  }, true);
  container.addEventListener("pointerup", function (ev) {
    if (!pts) { return; }
    ev.stopPropagation();
    var poly = pts, xy = doors.kgXY(), idx = [];
    pts = null; map.removeLayer(line); setDrawing(false); S.drewAt = Date.now();
    for (var j = 0; j < n; j++) {
      if (cur[j] >= 0 && poly.length > 2 && inside(xy[0][j], xy[1][j], poly)) { idx.push(j); }
    }
    S.sel = idx.length ? {kind: "lasso", idx: idx} : null;
    say(idx.length ? "" : "No door inside the lasso.", !idx.length);
    refresh();
  }, true);
  refresh();
  return S;
}"""
