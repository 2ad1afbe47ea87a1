// Progressive enhancement only: every page works without this file.
// Upload forms: refuse a file over the size limit before sending it.
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-max-bytes]")) {
    const limit = Number(form.dataset.maxBytes);
    const input = form.querySelector("input[type=file]");
    const message = form.querySelector(".client-error");
    if (!input || !message) continue;
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      const tooBig = file && file.size > limit;
      message.hidden = !tooBig;
      message.textContent = tooBig
        ? `This file is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${(limit / 1048576).toFixed(0)} MB.`
        : "";
      input.setCustomValidity(tooBig ? message.textContent : "");
    });
  }
});

// A refused form: the server marks the field at fault aria-invalid and autofocuses it. Make
// sure the focus lands there even when the field sits in a closed <details> or autofocus was
// ignored (e.g. the page was restored from history).
document.addEventListener("DOMContentLoaded", () => {
  const marked = document.querySelector('[aria-invalid="true"]');
  if (!marked) return;
  const field = marked.matches("input, select, textarea")
    ? marked : marked.querySelector("input, select, textarea");
  if (!field) return;
  for (let node = field.parentElement; node; node = node.parentElement) {
    if (node.tagName === "DETAILS") node.open = true;
  }
  if (document.activeElement !== field) field.focus();
});
