// The storage page: /api/storage/ drawn by Alpine, fetched again whenever the disk changes
// (storage_changed, download_complete on /ws/dashboard). Uses csrfToken, humanSize and plural
// from models.js; every text goes through x-text.

const SHOWN_UNMANAGED = 200; // the largest first; a tree of thousands draws the rest on demand

function storagePage() {
  return {
    report: null,
    selected: [],
    showAll: false,
    cleaning: null,
    uninstalling: null,
    connected: false,
    retryDelay: 500,
    reloading: null,

    async init() {
      await this.load();
      this.connect();
    },

    async load() {
      const response = await fetch("/api/storage/");
      if (!response.ok) return;
      this.report = await response.json();
      // A file gone meanwhile (deleted, or a .part its job now holds) is no longer selectable.
      const selectable = new Set([
        ...this.report.unmanaged.map((f) => f.path),
        ...this.report.partials.filter((f) => f.job === null).map((f) => f.path),
      ]);
      this.selected = this.selected.filter((path) => selectable.has(path));
    },

    // Several events in a row (a clean-up, then a download finishing) cost one fetch.
    reloadSoon() {
      clearTimeout(this.reloading);
      this.reloading = setTimeout(() => this.load(), 200);
    },

    connect() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/ws/dashboard`);
      socket.onopen = () => {
        this.connected = true;
        this.retryDelay = 500;
      };
      socket.onmessage = (message) => {
        const event = JSON.parse(message.data);
        if (event.type === "storage_changed" || event.type === "download_complete") this.reloadSoon();
      };
      socket.onclose = () => {
        this.connected = false;
        setTimeout(() => this.connect(), this.retryDelay);
        this.retryDelay = Math.min(this.retryDelay * 2, 10000);
      };
    },

    get shownUnmanaged() {
      const files = [...this.report.unmanaged].sort((a, b) => b.bytes - a.bytes);
      return this.showAll ? files : files.slice(0, SHOWN_UNMANAGED);
    },

    fileCounts(preset) {
      const parts = [`${preset.files_present} installed`];
      if (preset.files_incomplete) parts.push(`${preset.files_incomplete} of the wrong size`);
      if (preset.files_missing) parts.push(`${preset.files_missing} missing`);
      return parts.join(", ");
    },

    linkWords(link) {
      return {
        inside: "link to a file in the model folders",
        outside: "link leaving the model folders (not followed)",
        broken: "broken link",
      }[link] || "";
    },

    when(iso) {
      return new Date(iso).toLocaleString();
    },

    async post(url, body) {
      const response = await fetch(url, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
      if (!response.ok) showToast("error", data.error || `${response.status} ${response.statusText}`);
      return response.ok ? data : null;
    },

    async preview() {
      this.cleaning = await this.post("/api/storage/cleanup", { paths: this.selected, confirm: false });
    },

    async confirmCleanup() {
      const paths = this.cleaning.delete.map((file) => file.path);
      this.cleaning = null;
      const done = await this.post("/api/storage/cleanup", { paths, confirm: true });
      if (!done) return;
      let outcome = `Deleted ${plural(done.deleted.length, "file")}, ${humanSize(done.freed_bytes)} freed`;
      if (done.refused.length) outcome += `; kept ${done.refused.map((f) => `${f.path} (${f.reason})`).join(", ")}`;
      showToast(done.refused.length ? "warning" : "success", outcome);
      this.selected = [];
      this.load();
    },

    async uninstall() {
      const preset = this.uninstalling;
      this.uninstalling = null;
      const done = await this.post(`/api/presets/${encodeURIComponent(preset.id)}/uninstall`);
      if (!done) return;
      let outcome = `${preset.name} uninstalled: ${humanSize(done.freed_bytes)} freed`;
      if (done.kept_shared.length) outcome += `; kept ${plural(done.kept_shared.length, "shared file")}`;
      showToast("success", outcome);
      this.load();
    },

    async verify(preset) {
      const job = await this.post(`/api/presets/${encodeURIComponent(preset.id)}/verify`);
      if (job) showToast("info", `${preset.name}: verify queued`);
    },

    humanSize,
    plural,
  };
}
