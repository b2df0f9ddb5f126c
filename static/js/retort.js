// Upload progress for forms marked data-upload-progress: htmx reports XHR progress events.
document.addEventListener("htmx:xhr:progress", function (event) {
  const form = event.target.closest("form[data-upload-progress]");
  if (!form || !event.detail.lengthComputable) return;
  const bar = form.querySelector("progress");
  const label = form.querySelector("[data-upload-label]");
  const pct = Math.round((event.detail.loaded / event.detail.total) * 100);
  if (bar) { bar.hidden = false; bar.value = pct; }
  if (label) label.textContent = pct < 100 ? `Uploading… ${pct}%` : "Uploaded; starting the import…";
});
