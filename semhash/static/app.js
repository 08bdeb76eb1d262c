// The semhash page: search an index by text, image or an item, browse its 2-D map.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { indexes: [], index: null, map: null, mapFor: null, upload: null };

function current() { return state.indexes.find((entry) => entry.name === state.index); }
function isImages() { return current() && current().kind === "images"; }
function itemUrl(id, format) {
  const path = id.split("/").map(encodeURIComponent).join("/");
  return `/items/${path}?index=${encodeURIComponent(state.index)}&format=${format}`;
}
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}
function setStatus(text, error = false) { $("status").textContent = text; $("status").classList.toggle("error", error); }

async function answer(response) {
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}

async function loadIndexes() {
  state.indexes = await answer(await fetch("/indexes"));
  const select = $("index");
  select.replaceChildren(...state.indexes.map((entry) => el("option", { value: entry.name, textContent: entry.name })));
  choose(state.indexes[0].name);
}

function choose(name) {
  state.index = name;
  $("index").value = name;
  const entry = current();
  const balance = entry.bit_balance.reduce((a, b) => a + b, 0) / entry.bit_balance.length;
  $("summary").textContent = `${entry.items.toLocaleString()} ${entry.kind === "images" ? "images" : "documents"}` +
    ` · ${entry.bits}-bit codes · mean bit balance ${balance.toFixed(2)}`;
  $("query").disabled = isImages();
  if (isImages()) $("query").value = "";
  $("query").placeholder = isImages() ? "This index holds images: drop one below" : "Search by meaning…";
  $("drop").classList.toggle("off", !isImages());
  clearResults();
  setStatus("");
  if (!$("panel-map").hidden) showMap();
}

function clearResults() { $("results").replaceChildren(); $("grid").replaceChildren(); $("asked").replaceChildren(); }

function options(form) {
  form.append("index", state.index);
  form.append("k", $("k").value || "12");
  if ($("radius").value !== "") form.append("radius", $("radius").value);
  return form;
}

async function search(form, described) {
  setStatus("Searching…");
  try {
    const body = await answer(await fetch("/search", { method: "POST", body: options(form) }));
    render(body, described);
  } catch (error) {
    clearResults();
    setStatus(error.message, true);
  }
}

function searchText(text) { const form = new FormData(); form.append("q", text); search(form, `“${text}”`); }
function searchLike(id) {
  const form = new FormData(); form.append("like", id);
  showPanel("search");
  search(form, id).then(() => {
    if (isImages()) $("asked").replaceChildren(el("img", { src: itemUrl(id, "png"), alt: id }), `more like ${id}`);
  });
}
function searchImage(file) {
  const form = new FormData(); form.append("image", file, file.name);
  search(form, file.name).then(() => {
    $("asked").replaceChildren(el("img", { src: URL.createObjectURL(file), alt: file.name }), `nearest to ${file.name}`);
  });
}

function moreLike(id) { return el("button", { className: "link more", textContent: "more like this", onclick: () => searchLike(id) }); }

function render(body, described) {
  clearResults();
  const count = body.hits.length;
  setStatus(`${count} result${count === 1 ? "" : "s"} for ${described} in ${body.milliseconds.toFixed(1)} ms`);
  if (body.kind === "images") {
    $("grid").replaceChildren(...body.hits.map((hit) => {
      const image = el("img", { src: itemUrl(hit.id, "png"), alt: hit.id, title: hit.id, loading: "lazy" });
      image.onclick = () => view(hit);
      return el("div", { className: "tile" }, image,
        el("div", { className: "caption" }, el("span", { className: "label", textContent: hit.label ?? "–" }),
          el("span", { className: "distance", textContent: `d=${hit.distance}` })),
        el("div", { className: "actions" }, moreLike(hit.id),
          el("button", { className: "link", textContent: "rebuilt", onclick: () => view(hit) })));
    }));
  } else {
    $("results").replaceChildren(...body.hits.map((hit, rank) => el("li", {},
      el("span", { className: "rank", textContent: `${rank + 1}` }),
      el("span", { className: "title" }, hit.id, el("span", { className: "chip label", textContent: hit.label ?? "–" })),
      el("span", { className: "distance", textContent: `distance ${hit.distance} · score ${hit.score.toFixed(3)}` }),
      el("span", { className: "snippet" }, hit.snippet ?? "", " ", moreLike(hit.id)))));
  }
}

function view(hit) {
  $("viewer-title").textContent = `${hit.id} (${hit.label ?? "no label"})`;
  $("viewer-original").src = itemUrl(hit.id, "png");
  const can = current().reconstruction;
  $("viewer-rebuilt-figure").hidden = !can;
  $("viewer-rebuilt").src = can ? itemUrl(hit.id, "reconstruction") : "";
  $("viewer-note").textContent = can ? "The reconstruction is what the stored autoencoder rebuilds from the item's code." :
    "No reconstruction: this index reads patch features (or predates stored decoders), which cannot be drawn. " +
    "Indexes built with --image-features pixels or --arch conv keep their decoder.";
  $("viewer").showModal();
}

// The map tab
function showPanel(name) {
  for (const panel of ["search", "map"]) {
    $(`panel-${panel}`).hidden = panel !== name;
    $(`tab-${panel}`).setAttribute("aria-selected", String(panel === name));
  }
  if (name === "map") showMap();
}

async function showMap() {
  if (state.mapFor !== state.index) {
    $("map-caption").textContent = "Drawing the map…";
    try {
      state.map = await answer(await fetch(`/map?index=${encodeURIComponent(state.index)}`));
    } catch (error) {
      $("map-caption").textContent = error.message;
      return;
    }
    state.mapFor = state.index;
  }
  drawMap();
}

function mapLayout() {
  const canvas = $("map"), pad = 24, points = state.map.points;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (canvas.width - 2 * pad) / ((x1 - x0) || 1), sy = (canvas.height - 2 * pad) / ((y1 - y0) || 1);
  return points.map((p) => ({ ...p, px: pad + (p.x - x0) * sx, py: canvas.height - pad - (p.y - y0) * sy }));
}

function drawMap() {
  const map = state.map, canvas = $("map"), context = canvas.getContext("2d");
  state.placed = mapLayout();
  context.clearRect(0, 0, canvas.width, canvas.height);
  const radius = map.shown > 2000 ? 2 : 3.5;
  context.globalAlpha = 0.7;
  for (const point of state.placed) {
    context.fillStyle = map.colours[point.label] ?? "#9aa0a6";
    context.beginPath(); context.arc(point.px, point.py, radius, 0, 2 * Math.PI); context.fill();
  }
  context.globalAlpha = 1;
  const explained = map.explained.map((share) => `${Math.round(100 * share)}%`).join(" and ");
  $("map-caption").textContent = `${map.shown.toLocaleString()} of ${map.items.toLocaleString()} items: their codes ` +
    `on the first two principal components of the bits (${explained} of the variance). ` +
    "Hover to see an item; click to search with it.";
  $("legend").replaceChildren(...Object.entries(map.colours).map(([label, colour]) =>
    el("li", {}, el("i", { style: `background:${colour}` }), label)));
}

function nearestPoint(event) {
  const canvas = $("map"), box = canvas.getBoundingClientRect();
  const x = (event.clientX - box.left) * canvas.width / box.width, y = (event.clientY - box.top) * canvas.height / box.height;
  let best = null, bestDistance = 64;  // within 8 px
  for (const point of state.placed ?? []) {
    const distance = (point.px - x) ** 2 + (point.py - y) ** 2;
    if (distance < bestDistance) { best = point; bestDistance = distance; }
  }
  return best;
}

function hover(event) {
  const point = nearestPoint(event), tip = $("tip");
  if (!point) { tip.hidden = true; return; }
  tip.replaceChildren(...(isImages() ? [el("img", { src: itemUrl(point.id, "png"), alt: "" })] : []),
    el("div", { textContent: point.id }), el("div", { className: "muted", textContent: point.label ?? "no label" }));
  tip.style.left = `${event.offsetX + 14}px`; tip.style.top = `${event.offsetY + 14}px`;
  tip.hidden = false;
}

// Wiring
$("index").onchange = (event) => choose(event.target.value);
$("tab-search").onclick = () => showPanel("search");
$("tab-map").onclick = () => showPanel("map");
$("search-form").onsubmit = (event) => {
  event.preventDefault();
  if (isImages()) { setStatus("This index holds images: drop an image to search with it.", true); return; }
  searchText($("query").value);
};
const drop = $("drop");
drop.ondragover = (event) => { event.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (event) => {
  event.preventDefault(); drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) searchImage(file);
};
$("choose").onclick = (event) => { event.preventDefault(); $("file").click(); };
$("file").onchange = (event) => { if (event.target.files[0]) searchImage(event.target.files[0]); };
$("map").onmousemove = hover;
$("map").onmouseleave = () => { $("tip").hidden = true; };
$("map").onclick = (event) => { const point = nearestPoint(event); if (point) searchLike(point.id); };
loadIndexes().catch((error) => setStatus(error.message, true));
