// A preset's page: its Verify and Re-download buttons queue a job and say so (the page is drawn
// by the server; the models page follows the job live).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { action, preset } = button.dataset;
  button.disabled = true;
  const response = await fetch(`/api/presets/${encodeURIComponent(preset)}/${action}`, {
    method: "POST",
    headers: { "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content },
  });
  const data = await response.json();
  button.disabled = false;
  if (!response.ok) {
    showToast("error", data.error || `${action} failed`);
    return;
  }
  const what = action === "verify" ? "verifying" : "download";
  showToast("info", `Queued for ${what}: the models page follows it live`);
});
