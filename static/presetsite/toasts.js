// Toasts built with DOM methods and textContent only: event data never becomes markup.
function showToast(kind, text) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const toast = document.createElement("div");
  toast.className = "toast toast-" + kind;
  toast.setAttribute("role", "status");
  toast.textContent = text;
  box.appendChild(toast);
  setTimeout(() => toast.remove(), 6000);
}
