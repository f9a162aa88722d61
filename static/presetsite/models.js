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

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// One precision for every progress figure: 25.2%, 29.0%, 100.0%.
function percent(value) {
  return `${Number(value || 0).toFixed(1)}%`;
}

function humanDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

function catalogueChanged(diff) {
  return ["added", "changed", "removed", "retired"].some((key) => (diff[key] || []).length);
}

function catalogueChanges(diff) {
  return ["added", "changed", "removed", "retired"]
    .filter((key) => (diff[key] || []).length)
    .map((key) => `${diff[key].length} ${key}`)
    .join(", ");
}

const ACTIVE = ["queued", "downloading", "retrying", "paused"];

// The catalogue's download size, else the sum of its files' sizes (exact where known).
function presetSize(preset) {
  if (preset.download_size_bytes !== null) return preset.download_size_bytes;
  const sizes = preset.files.map((f) => f.exact_bytes ?? f.size_bytes).filter((size) => size !== null);
  return sizes.length ? sizes.reduce((a, b) => a + b, 0) : null;
}

// Presets of unknown size go last either way.
const SORTS = {
  catalogue: () => 0,
  name: (a, b) => a.name.localeCompare(b.name),
  "size-desc": (a, b) => (presetSize(b) ?? -1) - (presetSize(a) ?? -1),
  "size-asc": (a, b) => (presetSize(a) ?? Infinity) - (presetSize(b) ?? Infinity),
};

// canRefresh: the admin's rule for a refresh, staff who may change presets. isStaff: may uninstall.
function modelsPage(canRefresh, isStaff) {
  return {
    canRefresh,
    isStaff,
    presets: [],
    categories: [],
    category: "",
    type: "",
    search: "",
    installedOnly: false,
    sort: "catalogue",
    cancelling: null,
    uninstalling: null,
    retryAt: {},
    now: Date.now(),
    current: null,
    waiting: [],
    connected: false,
    loading: true,
    socket: null,
    retryDelay: 500,

    async init() {
      setInterval(() => (this.now = Date.now()), 1000);
      await Promise.all([this.loadPresets(), this.loadCategories()]);
      this.connect();
      this.$nextTick(() => this.showLinkedCard());
      window.addEventListener("hashchange", () => this.showLinkedCard());
    },

    // Links such as /#preset-FLUX_DEV point at a card that exists only once the cards are drawn.
    showLinkedCard() {
      const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
      if (target) target.scrollIntoView({ block: "center" });
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
      const shown = this.presets.filter(
        (p) =>
          (!this.category || p.category === this.category) &&
          (!this.type || p.type === this.type) &&
          (!this.installedOnly || p.installed) &&
          (!needle ||
            [p.id, p.name, p.description, ...p.tags].some((t) => t.toLowerCase().includes(needle))),
      );
      return shown.sort(SORTS[this.sort]);
    },

    get filtered() {
      return Boolean(this.search || this.category || this.type || this.installedOnly);
    },

    clearFilters() {
      this.search = "";
      this.category = "";
      this.type = "";
      this.installedOnly = false;
    },

    // A preset being downloaded again (force) is still installed until the new file replaces it.
    get installedCount() {
      return this.presets.filter((p) => p.installed).length;
    },

    statusText(status, presetId) {
      if (status === "downloading" && this.jobKind(presetId) === "verify") return "verifying";
      if (status !== "retrying") return status;
      const seconds = Math.ceil(((this.retryAt[presetId] || 0) - this.now) / 1000);
      return seconds > 0 ? `retrying in ${seconds} s` : "retrying now";
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
        const seconds = Math.max(1, Math.round(event.delay));
        this.retryAt[event.preset_id] = Date.now() + seconds * 1000;
        showToast(
          "warning",
          `${this.nameOf(event.preset_id)}: ${event.error}; retrying in ${seconds} s (attempt ${event.attempt} of ${event.max})`,
        );
      } else if (event.type === "download_complete") {
        showToast("success", `${this.nameOf(event.preset_id)} is installed`);
        this.reloadPreset(event.preset_id);
      } else if (event.type === "download_failed") {
        showToast("error", `${this.nameOf(event.preset_id)} failed: ${event.error}`);
        this.reloadPreset(event.preset_id);
      } else if (event.type === "storage_changed") {
        if (event.reason === "verify") {
          const kind = event.result.includes("corrupt: []") ? "success" : "error";
          showToast(kind, `${this.nameOf(event.preset_id)} verified: ${event.result}`);
        }
        // Files came or went: which presets are installed, and which still fit, may have changed.
        this.loadPresets();
      } else if (event.type === "catalogue_refreshed" && catalogueChanged(event)) {
        showToast("info", `Catalogue refreshed: ${catalogueChanges(event)}`);
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
          preset.status = active.get(preset.id);
        } else if (ACTIVE.includes(preset.status)) {
          this.reloadPreset(preset.id);
        }
      }
    },

    // Whether the preset's job in the queue downloads ("install") or checks its files ("verify").
    jobKind(id) {
      const job = [this.current, ...this.waiting].find((j) => j && j.preset_id === id);
      return job ? job.kind : "install";
    },

    nameOf(id) {
      const preset = this.presets.find((p) => p.id === id);
      return preset ? preset.name : id;
    },

    async act(preset, action, query = "") {
      const before = preset.status;
      const response = await fetch(`/api/presets/${encodeURIComponent(preset.id)}/${action}${query}`, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken() },
      });
      const data = await response.json();
      if (!response.ok) {
        showToast("error", data.error || `${action} failed`);
        return;
      }
      if (action === "install") {
        showToast("info", data.status === "installed" ? `${preset.name} is already installed` : `${preset.name} queued`);
      }
      if (action === "verify") showToast("info", `${preset.name} queued for verifying`);
      // The socket may have told newer news while this answer was on its way (the worker took
      // the job up): that stands; the answer only fills in when nothing came meanwhile.
      if (preset.status === before) preset.status = data.status === "cancelled" ? "available" : data.status;
      return data;
    },

    // Cancel (or dismiss a failed download) asks first whether to keep what was downloaded.
    async askCancel(preset) {
      await this.reloadPreset(preset.id);
      const fresh = this.presetById(preset.id);
      const job = fresh.job || {};
      this.cancelling = {
        preset: fresh,
        failed: fresh.status === "failed",
        verifying: job.kind === "verify" && fresh.status !== "failed",
        partial: job.partial_bytes || 0,
        canDelete: Boolean(job.can_delete_partial),
      };
    },

    async confirmCancel(keep) {
      const { preset, failed, partial, verifying } = this.cancelling;
      this.cancelling = null;
      const data = await this.act(preset, "cancel", keep ? "" : "?keep_partial=false");
      if (!data) return;
      const what = verifying ? "verify stopped" : failed ? "failed download dismissed" : "download cancelled";
      let outcome = `${preset.name}: ${what}`;
      if (partial && keep) outcome += `; the ${humanSize(partial)} downloaded is kept and Install resumes from it`;
      else if (partial) outcome += ` and the ${humanSize(partial)} downloaded deleted`;
      showToast("success", outcome);
      this.reloadPreset(preset.id);
    },

    // Staff may uninstall a preset with files on disk and no job in the queue.
    canUninstall(preset) {
      return this.isStaff && !ACTIVE.includes(preset.status) && preset.files.some((f) => f.installed);
    },

    askUninstall(preset) {
      const files = preset.files.filter((f) => f.installed);
      const bytes = files.reduce((sum, f) => sum + (f.exact_bytes ?? f.size_bytes ?? 0), 0);
      this.uninstalling = { preset, files, bytes };
    },

    async confirmUninstall() {
      const { preset } = this.uninstalling;
      this.uninstalling = null;
      const response = await fetch(`/api/presets/${encodeURIComponent(preset.id)}/uninstall`, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken() },
      });
      const data = await response.json();
      if (!response.ok) {
        showToast("error", data.error || "uninstall failed");
        return;
      }
      let outcome = `${preset.name} uninstalled: ${plural(data.deleted.length, "file")} deleted, ${humanSize(data.freed_bytes)} freed`;
      if (data.kept_shared.length) outcome += `; ${plural(data.kept_shared.length, "shared file")} kept`;
      showToast(data.refused.length ? "warning" : "success", outcome);
      this.reloadPreset(preset.id);
    },

    async refreshCatalogue() {
      const response = await fetch("/api/presets/refresh", {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken() },
      });
      const data = await response.json();
      // A refresh that changed something reaches everyone as a catalogue_refreshed event.
      if (!response.ok) showToast("error", `Refresh failed: ${data.error}`);
      else if (data.not_modified || !catalogueChanged(data)) showToast("info", "The catalogue is up to date");
    },

    presetById(id) {
      return this.presets.find((p) => p.id === id) || { id, name: id };
    },

    humanSize,
    humanDuration,
    plural,
    percent,
    presetSize,
  };
}
