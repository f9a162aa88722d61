// The templates page: a card whose models are being installed follows the queue over
// /ws/dashboard, and is fetched again (htmx) when its presets' queue states change.

function cardQueueKey(card, states) {
  return card.dataset.presets
    .split(" ")
    .filter(Boolean)
    .map((id) => `${id}:${states.get(id) || ""}`)
    .join(" ");
}

function refreshCard(card) {
  // A card asking to confirm stays as it is: the user is reading what it says.
  if (card.querySelector("[data-testid=install-confirm]")) return;
  htmx.ajax("GET", card.dataset.card, { target: card, swap: "outerHTML" });
}

function followQueue() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let retryDelay = 500;

  function connect() {
    const socket = new WebSocket(`${scheme}://${location.host}/ws/dashboard`);
    socket.onopen = () => {
      retryDelay = 500;
    };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      const cards = document.querySelectorAll("article.template[data-presets]");
      if (event.type === "queue_updated") {
        const states = new Map();
        for (const job of [event.current, ...event.queue]) if (job) states.set(job.preset_id, job.status);
        for (const card of cards) if (cardQueueKey(card, states) !== card.dataset.queue) refreshCard(card);
      } else if (event.type === "download_complete" || event.type === "download_failed") {
        for (const card of cards) if (card.dataset.presets.split(" ").includes(event.preset_id)) refreshCard(card);
      }
    };
    socket.onclose = () => {
      // The server sends a fresh snapshot on every connection: nothing is missed for long.
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    };
  }

  connect();
}

document.addEventListener("DOMContentLoaded", followQueue);
