// The fleet page. Admin: nodes and the shards each owns, readings/s, resident twins and lag (from the
// nodes' heartbeats via GET /v1/ops/cluster), the shard map with "move", "drain" per node. Everyone: the
// live alert feed (GET /v1/alerts/live: all devices for admin, own devices for a user) and the devices.
import { api, ApiError, follow } from "./api.js";
import { clock, colorOf, describeAlert, duration, h, num, toast } from "./format.js";

const REFRESH_MS = 2000;
const MAX_ALERTS = 100;

export function mountFleet(main, ctx) {
  const isAdmin = ctx.me.kind === "admin";
  const summary = h("section.cards", { id: "summary" });
  const nodes = h("tbody");
  const shardGrid = h("div.shard-grid", { id: "shard-grid" });
  const movePanel = h("div.move", { id: "move-panel" }, h("p.muted", {}, "Select a shard to move it."));
  const alerts = h("ol.alerts", { id: "alert-feed" });
  const feedState = h("span.badge", { id: "feed-state" }, "connecting");
  const filter = h("input", { id: "device-filter", type: "search", placeholder: "filter devices" });
  const devices = h("tbody", { id: "device-rows" });
  const deviceCount = h("span.muted");
  let cluster = null;
  let selectedShard = null;
  let allDevices = [];
  let stopped = false;

  main.replaceChildren(
    h("h1", {}, isAdmin ? "Fleet" : "My devices"),
    isAdmin ? summary : "",
    h(
      "div.columns",
      {},
      isAdmin
        ? h(
            "section.panel",
            { id: "nodes" },
            h("h2", {}, "Nodes"),
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ["node", "state", "shards", "readings/s", "resident twins", "lag", "heartbeat", ""].map((t) => h("th", {}, t)))),
              nodes,
            ),
          )
        : "",
      h("section.panel", { id: "alerts" }, h("h2", {}, "Live alerts ", feedState), alerts, h("p.muted.empty", {}, "Alerts appear here as twins raise them.")),
    ),
    isAdmin ? h("section.panel", { id: "shards" }, h("h2", {}, "Shards"), shardGrid, movePanel) : "",
    h("section.panel", { id: "devices" }, h("h2", {}, "Devices ", deviceCount), filter, h("table", {}, h("thead", {}, h("tr", {}, ["device", "owner", "registered", ""].map((t) => h("th", {}, t)))), devices)),
  );

  // ---- the live alert feed
  const seen = new Set();
  const stopFeed = follow(
    "/v1/alerts/live",
    ({ event, data }) => {
      if (event !== "alert" || seen.has(data.id)) return;
      seen.add(data.id);
      alerts.prepend(alertItem(data));
      while (alerts.children.length > MAX_ALERTS) alerts.lastElementChild.remove();
    },
    (state) => {
      feedState.textContent = state === "open" ? "live" : state;
      feedState.className = `badge ${state === "open" ? "ok" : "warn"}`;
      if (state === "denied") ctx.onDenied();
    },
  );

  // ---- devices
  const renderDevices = () => {
    const q = filter.value.trim().toLowerCase();
    const matching = allDevices.filter((d) => q === "" || d.deviceId.toLowerCase().includes(q) || (d.ownerId ?? "").toLowerCase().includes(q));
    deviceCount.textContent = `(${allDevices.length})`;
    devices.replaceChildren(
      ...matching.slice(0, 200).map((d) =>
        h(
          "tr",
          { dataset: { device: d.deviceId } },
          h("td", {}, h("a", { href: `#/devices/${d.deviceId}` }, d.deviceId)),
          h("td", {}, d.ownerId ?? ""),
          h("td", {}, d.createdAt ? new Date(d.createdAt).toLocaleString() : ""),
          h("td", {}, d.disabled ? h("span.badge.warn", {}, "disabled") : ""),
        ),
      ),
      ...(matching.length > 200 ? [h("tr", {}, h("td.muted", { colspan: 4 }, `${matching.length - 200} more: narrow the filter`))] : []),
    );
  };
  filter.addEventListener("input", renderDevices);
  const loadDevices = () =>
    api("/v1/devices")
      .then((r) => {
        allDevices = r.devices ?? [];
        renderDevices();
      })
      .catch((err) => toast(`devices: ${err.message}`, "error"));
  void loadDevices();

  // ---- cluster (admin)
  const renderCluster = () => {
    if (cluster === null) return;
    const live = cluster.nodes.filter((n) => n.live);
    const lagOf = (n) => n.owned.reduce((sum, s) => sum + (cluster.shards[s]?.lag ?? 0), 0);
    const totalRate = live.reduce((sum, n) => sum + (n.unitsPerSec ?? 0), 0);
    const totalResident = live.reduce((sum, n) => sum + (n.resident ?? 0), 0);
    const totalLag = cluster.shards.reduce((sum, s) => sum + (s.lag ?? 0), 0);
    const owned = cluster.shards.filter((s) => s.owner !== null).length;
    summary.replaceChildren(
      card("nodes", `${live.length}`, `${cluster.nodes.length - live.length} not live`),
      card("shards owned", `${owned} / ${cluster.shards.length}`, cluster.coordinator ? `coordinator ${cluster.coordinator.nodeId}` : "no coordinator"),
      card("readings/s", num(totalRate, 1), "applied by the twins"),
      card("resident twins", num(totalResident, 0), "decoded in memory"),
      card("lag", num(totalLag, 0), "input messages not yet applied"),
    );
    nodes.replaceChildren(
      ...cluster.nodes.map((n) => {
        const state = !n.live ? "dead" : n.leaving ? "leaving" : n.draining ? "draining" : "live";
        return h(
          "tr",
          { dataset: { node: n.nodeId } },
          h("td", {}, h("span.swatch", { style: { background: colorOf(n.nodeId) } }), n.nodeId),
          h("td", {}, h(`span.badge.${state === "live" ? "ok" : "warn"}`, {}, state)),
          h("td.num", { title: n.owned.join(", ") }, String(n.owned.length)),
          h("td.num", {}, num(n.unitsPerSec, 1)),
          h("td.num", {}, n.resident === undefined ? "–" : `${num(n.resident, 0)} / ${num(n.entities, 0)}`),
          h("td.num", {}, num(lagOf(n), 0)),
          h("td.num", {}, duration(cluster.at - n.heartbeatAt)),
          h("td", {}, n.live && !n.draining ? h("button.small", { onclick: () => drain(n.nodeId), dataset: { drain: n.nodeId } }, "drain") : ""),
        );
      }),
    );
    shardGrid.replaceChildren(
      ...cluster.shards.map((s) =>
        h(
          `button.shard${s.shard === selectedShard ? ".selected" : ""}${s.pinned ? ".pinned" : ""}`,
          {
            title: `shard ${s.shard}: ${s.owner ?? "no owner"}${s.pinned ? " (pinned)" : ""}, epoch ${s.epoch}, lag ${s.lag ?? "?"}`,
            style: { background: s.owner ? colorOf(s.owner) : "#bbb" },
            dataset: { shard: s.shard, owner: s.owner ?? "" },
            onclick: () => {
              selectedShard = s.shard;
              renderCluster();
            },
          },
          String(s.shard),
        ),
      ),
    );
    renderMovePanel(live);
  };

  const renderMovePanel = (live) => {
    const s = selectedShard === null ? undefined : cluster.shards[selectedShard];
    if (s === undefined) return;
    const targets = live.filter((n) => !n.draining && n.nodeId !== s.owner);
    const select = h("select", { id: "move-target" }, ...targets.map((n) => h("option", { value: n.nodeId }, n.nodeId)));
    movePanel.replaceChildren(
      h("p", {}, h("strong", {}, `Shard ${s.shard}`), ` owner ${s.owner ?? "none"} · epoch ${s.epoch} · lag ${s.lag ?? "?"}${s.pinned ? " · pinned" : ""}`),
      targets.length === 0
        ? h("p.muted", {}, "No other live node to move it to.")
        : h("div.row", {}, h("label", { for: "move-target" }, "Move to "), select, h("button", { id: "move-button", onclick: () => move(s.shard, select.value) }, "Move")),
    );
  };

  async function move(shard, node) {
    try {
      await api(`/v1/ops/shards/${shard}/move`, { method: "POST", body: { node } });
      toast(`Shard ${shard} is moving to ${node}`);
      await refresh();
    } catch (err) {
      toast(`Move failed: ${err instanceof ApiError ? err.describe() : err.message}`, "error");
    }
  }

  async function drain(node) {
    if (!confirm(`Drain ${node}? Its shards move to the other nodes; it takes none until it restarts.`)) return;
    try {
      await api(`/v1/ops/nodes/${encodeURIComponent(node)}/drain`, { method: "POST" });
      toast(`${node} is draining`);
      await refresh();
    } catch (err) {
      toast(`Drain failed: ${err instanceof ApiError ? err.describe() : err.message}`, "error");
    }
  }

  let timer;
  async function refresh() {
    if (!isAdmin || stopped) return;
    try {
      cluster = await api("/v1/ops/cluster");
      renderCluster();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return ctx.onDenied();
      summary.replaceChildren(h("p.error", {}, `Cluster unavailable: ${err.message}`));
    }
  }
  const loop = async () => {
    await refresh();
    if (!stopped) timer = setTimeout(loop, REFRESH_MS);
  };
  void loop();

  return () => {
    stopped = true;
    clearTimeout(timer);
    stopFeed();
  };
}

function card(title, value, note) {
  return h("div.card", {}, h("div.card-title", {}, title), h("div.card-value", {}, value), h("div.card-note", {}, note));
}

/** One line of an alert feed (also used by the device page). */
export function alertItem(a) {
  return h(
    `li.alert.kind-${a.kind.replace(".", "-")}`,
    { dataset: { alert: a.id } },
    h("span.when", { title: new Date(a.at).toISOString() }, clock(a.at)),
    h("a.dev", { href: `#/devices/${a.deviceId}` }, a.deviceId),
    h("span.kind", {}, a.kind),
    h("span.what", {}, describeAlert(a)),
  );
}
