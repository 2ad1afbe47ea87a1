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
