// The models page: preset cards from /api/presets/, the live queue from /ws/dashboard.
// Alpine renders with x-text (textContent); toasts use DOM methods: no data becomes markup.

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

function humanSize(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function humanDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

const ACTIVE = ["queued", "downloading", "retrying", "paused"];

function modelsPage(isStaff) {
  return {
    isStaff,
    presets: [],
    categories: [],
    category: "",
    type: "",
    search: "",
    current: null,
    waiting: [],
    connected: false,
    loading: true,
    socket: null,
    retryDelay: 500,

    async init() {
      await Promise.all([this.loadPresets(), this.loadCategories()]);
      this.connect();
    },

    async loadPresets() {
      const response = await fetch("/api/presets/");
      const data = await response.json();
      this.presets = data.presets;
      this.loading = false;
    },

    async loadCategories() {
      const response = await fetch("/api/presets/categories");
      this.categories = (await response.json()).categories;
    },

    async reloadPreset(id) {
      const response = await fetch(`/api/presets/${encodeURIComponent(id)}`);
      if (!response.ok) return;
      const fresh = await response.json();
      const index = this.presets.findIndex((p) => p.id === id);
      if (index >= 0) this.presets[index] = fresh;
    },

    get types() {
      return [...new Set(this.presets.map((p) => p.type))].sort();
    },

    get visible() {
      const needle = this.search.trim().toLowerCase();
      return this.presets.filter(
        (p) =>
          (!this.category || p.category === this.category) &&
          (!this.type || p.type === this.type) &&
          (!needle ||
            [p.id, p.name, p.description, ...p.tags].some((t) => t.toLowerCase().includes(needle))),
      );
    },

    count(status) {
      return this.presets.filter((p) => p.status === status).length;
    },

    connect() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/ws/dashboard`);
      this.socket = socket;
      socket.onopen = () => {
        this.connected = true;
        this.retryDelay = 500;
      };
      socket.onmessage = (message) => this.handle(JSON.parse(message.data));
      socket.onclose = () => {
        this.connected = false;
        // Reconnect by itself; the server sends a fresh snapshot on every connection.
        setTimeout(() => this.connect(), this.retryDelay);
        this.retryDelay = Math.min(this.retryDelay * 2, 10000);
      };
    },

    handle(event) {
      if (event.type === "queue_updated") {
        this.applyQueue(event);
      } else if (event.type === "download_progress") {
        if (this.current && this.current.job_id === event.job_id) Object.assign(this.current, event);
      } else if (event.type === "download_retrying") {
        showToast("warning", `${event.preset_id}: retrying (attempt ${event.attempt} of ${event.max}): ${event.error}`);
      } else if (event.type === "download_complete") {
        showToast("success", `${this.nameOf(event.preset_id)} is installed`);
        this.reloadPreset(event.preset_id);
      } else if (event.type === "download_failed") {
        showToast("error", `${this.nameOf(event.preset_id)} failed: ${event.error}`);
        this.reloadPreset(event.preset_id);
      } else if (event.type === "catalogue_refreshed") {
        showToast(
          "info",
          `Catalogue refreshed: ${event.added.length} added, ${event.changed.length} changed, ${event.removed.length} removed`,
        );
        this.loadPresets();
        this.loadCategories();
      }
    },

    applyQueue(snapshot) {
      this.current = snapshot.current;
      this.waiting = snapshot.queue;
      const active = new Map();
      for (const job of [snapshot.current, ...snapshot.queue]) if (job) active.set(job.preset_id, job.status);
      for (const preset of this.presets) {
        if (active.has(preset.id)) {
          preset.status = active.get(preset.id) === "retrying" ? "downloading" : active.get(preset.id);
        } else if (ACTIVE.includes(preset.status)) {
          this.reloadPreset(preset.id);
        }
      }
    },

    nameOf(id) {
      const preset = this.presets.find((p) => p.id === id);
      return preset ? preset.name : id;
    },

    async act(preset, action, query = "") {
      const response = await fetch(`/api/presets/${encodeURIComponent(preset.id)}/${action}${query}`, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken() },
      });
      const data = await response.json();
      if (!response.ok) {
        showToast("error", data.error || `${action} failed`);
        return;
      }
      if (action === "install") showToast("info", `${preset.name} queued`);
      preset.status = data.status === "cancelled" ? "available" : data.status;
      if (data.status === "cancelled") this.reloadPreset(preset.id);
    },

    async refreshCatalogue() {
      const response = await fetch("/api/presets/refresh", {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken() },
      });
      const data = await response.json();
      // A refresh that changed something reaches everyone as a catalogue_refreshed event.
      if (!response.ok) showToast("error", `Refresh failed: ${data.error}`);
      else if (data.not_modified) showToast("info", "The catalogue is up to date");
    },

    presetById(id) {
      return this.presets.find((p) => p.id === id) || { id, name: id };
    },

    humanSize,
    humanDuration,
  };
}
