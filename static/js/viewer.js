// The doctor's image viewer, as progressive enhancement: without this file the page shows the
// plain image and the heat map as a second image below it. With it: zoom and pan (CSS
// transforms), brightness and contrast (CSS filters), the heat map laid over the image under
// an opacity slider, and fullscreen (the Fullscreen API). No inline script or style attribute
// in the HTML: the Content-Security-Policy allows neither (setting element.style is allowed).
"use strict";

const MIN_ZOOM = 1;
const MAX_ZOOM = 8;
const ZOOM_STEP = 1.25;
const PAN_STEP = 40; // pixels per arrow key press

function setUpViewer(viewer) {
  const frame = viewer.querySelector(".frame");
  const image = frame.querySelector(".scan-image");
  const toolbar = viewer.querySelector(".viewer-toolbar");
  const zoomLevel = viewer.querySelector("#zoom-level");
  const brightness = viewer.querySelector("#brightness");
  const contrast = viewer.querySelector("#contrast");
  const opacity = viewer.querySelector("#heatmap-opacity");
  const fullscreen = viewer.querySelector("#fullscreen");
  const figure = viewer.querySelector("#heatmap");
  const overlay = figure && figure.querySelector(".gradcam-image");
  const layers = [image];
  if (overlay && opacity) {
    // The overlay image is the scan blended with the heat map at the scan's aspect ratio:
    // laid exactly over the scan, its opacity fades the heat map in. It stays unloaded
    // (hidden) until the slider first asks for it: Grad-CAM costs a model run.
    frame.appendChild(overlay);
    overlay.hidden = true;
    layers.push(overlay);
  }
  const view = { zoom: 1, x: 0, y: 0 };

  function clampPan() {
    // Keep some of the image in the frame: at zoom z the image is z times the frame's size.
    const limitX = ((view.zoom - 1) * frame.clientWidth) / 2;
    const limitY = ((view.zoom - 1) * frame.clientHeight) / 2;
    view.x = Math.max(-limitX, Math.min(limitX, view.x));
    view.y = Math.max(-limitY, Math.min(limitY, view.y));
  }

  function render() {
    clampPan();
    const transform = view.zoom === 1 ? "" : `translate(${view.x}px, ${view.y}px) scale(${view.zoom})`;
    const filter = `brightness(${brightness.value}%) contrast(${contrast.value}%)`;
    for (const layer of layers) {
      layer.style.transform = transform;
      layer.style.filter = filter;
    }
    zoomLevel.value = `${Math.round(view.zoom * 100)} %`;
    frame.classList.toggle("zoomed", view.zoom > 1);
    showValue(brightness, `${brightness.value} %`);
    showValue(contrast, `${contrast.value} %`);
    if (overlay) {
      const value = Number(opacity.value);
      overlay.hidden = value === 0;
      overlay.style.opacity = String(value / 100);
      showValue(opacity, value === 0 ? "off" : `${value} %`);
    }
  }

  function showValue(slider, text) {
    slider.setAttribute("aria-valuetext", text);
    viewer.querySelector(`output[for="${slider.id}"]`).value = text;
  }

  // Zoom about a point given relative to the frame's centre, so it stays under the pointer.
  function zoomTo(zoom, pointX = 0, pointY = 0) {
    const next = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, zoom));
    view.x = pointX - ((pointX - view.x) * next) / view.zoom;
    view.y = pointY - ((pointY - view.y) * next) / view.zoom;
    view.zoom = next;
    render();
  }

  function fromCentre(event) {
    const box = frame.getBoundingClientRect();
    return [event.clientX - box.left - box.width / 2, event.clientY - box.top - box.height / 2];
  }

  viewer.querySelector("#zoom-in").addEventListener("click", () => zoomTo(view.zoom * ZOOM_STEP));
  viewer.querySelector("#zoom-out").addEventListener("click", () => zoomTo(view.zoom / ZOOM_STEP));
  viewer.querySelector("#zoom-fit").addEventListener("click", () => zoomTo(1));
  viewer.querySelector("#viewer-reset").addEventListener("click", () => {
    brightness.value = 100;
    contrast.value = 100;
    if (opacity) opacity.value = 0;
    zoomTo(1);
  });
  for (const slider of [brightness, contrast, opacity]) {
    if (slider) slider.addEventListener("input", render);
  }

  frame.addEventListener("wheel", (event) => {
    event.preventDefault();
    zoomTo(view.zoom * (event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP), ...fromCentre(event));
  }, { passive: false });
  frame.addEventListener("dblclick", (event) => {
    zoomTo(view.zoom > 1 ? 1 : 2, ...fromCentre(event));
  });

  let drag = null;
  frame.addEventListener("pointerdown", (event) => {
    if (view.zoom === 1 || event.button !== 0) return;
    drag = { x: event.clientX - view.x, y: event.clientY - view.y };
    frame.setPointerCapture(event.pointerId);
    frame.classList.add("panning");
  });
  frame.addEventListener("pointermove", (event) => {
    if (!drag) return;
    view.x = event.clientX - drag.x;
    view.y = event.clientY - drag.y;
    render();
  });
  const endDrag = () => {
    drag = null;
    frame.classList.remove("panning");
  };
  frame.addEventListener("pointerup", endDrag);
  frame.addEventListener("pointercancel", endDrag);

  const keys = {
    ArrowLeft: () => { view.x += PAN_STEP; render(); },
    ArrowRight: () => { view.x -= PAN_STEP; render(); },
    ArrowUp: () => { view.y += PAN_STEP; render(); },
    ArrowDown: () => { view.y -= PAN_STEP; render(); },
    "+": () => zoomTo(view.zoom * ZOOM_STEP),
    "=": () => zoomTo(view.zoom * ZOOM_STEP),
    "-": () => zoomTo(view.zoom / ZOOM_STEP),
    0: () => zoomTo(1),
  };
  frame.addEventListener("keydown", (event) => {
    const action = keys[event.key];
    if (!action || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    action();
  });

  if (document.fullscreenEnabled) {
    fullscreen.addEventListener("click", () => {
      if (document.fullscreenElement) document.exitFullscreen();
      else viewer.requestFullscreen();
    });
    document.addEventListener("fullscreenchange", () => {
      const on = document.fullscreenElement === viewer;
      fullscreen.setAttribute("aria-pressed", String(on));
      fullscreen.textContent = on ? "Exit fullscreen" : "Fullscreen";
      render(); // the frame's size changed: re-clamp the pan
    });
  } else {
    fullscreen.hidden = true;
  }

  toolbar.hidden = false;
  viewer.classList.add("enhanced");
  render();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const viewer of document.querySelectorAll("[data-viewer]")) setUpViewer(viewer);
});
