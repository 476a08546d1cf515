// The device page's rules and subscriptions: tables redrawn from the twin's view, and forms built once
// (a live refresh never wipes what the user is typing). Every change is a command with an
// idempotency key (api.js), so a double click applies once.
import { command } from "./api.js";
import { CHANNELS, NAMES, duration, h, num, toast } from "./format.js";

/** The two panels; `render(view)` redraws their tables. `refresh`/`reload` re-read the twin after a change. */
export function deviceSettings(deviceId, { fail, refresh, reload }) {
  const rulesPanel = h("section.panel", { id: "rules" });
  const subsPanel = h("section.panel", { id: "subscriptions" });
  let view = null;

  // ---- rules (the forms are built once: a refresh redraws the tables, never what the user is typing)
  const ruleRows = h("tbody", { id: "rule-rows" });
  rulesPanel.append(
    h("h2", {}, "Rules"),
    h("table", {}, h("thead", {}, h("tr", {}, ["rule", "channel", "", "enter / exit", "durations", "state", ""].map((t) => h("th", {}, t)))), ruleRows),
    h("h3", {}, "Add or replace a rule"),
    ruleForm(),
  );

  function ruleForm() {
    const fields = {
      id: h("input", { name: "id", required: true, pattern: "[A-Za-z0-9_-]{1,64}", placeholder: "my-co2", size: 12 }),
      channel: h("select", { name: "channel" }, ...CHANNELS.map((c) => h("option", { value: c }, NAMES[c]))),
      direction: h("select", { name: "direction" }, h("option", { value: "above" }, "above"), h("option", { value: "below" }, "below")),
      enter: h("input", { name: "enter", type: "number", step: "any", required: true, size: 6 }),
      exit: h("input", { name: "exit", type: "number", step: "any", required: true, size: 6 }),
      minMinutes: h("input", { name: "minMinutes", type: "number", min: 0, step: "any", value: 0, size: 4 }),
      clearMinutes: h("input", { name: "clearMinutes", type: "number", min: 0, step: "any", value: 0, size: 4 }),
    };
    return h(
      "form.inline",
      {
        id: "rule-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const rule = {
            id: fields.id.value.trim(),
            channel: fields.channel.value,
            direction: fields.direction.value,
            enter: Number(fields.enter.value),
            exit: Number(fields.exit.value),
            minDurationMs: Math.round(Number(fields.minMinutes.value || 0) * 60_000),
            clearDurationMs: Math.round(Number(fields.clearMinutes.value || 0) * 60_000),
          };
          await command(deviceId, { type: "putRule", rule })
            .then(() => {
              toast(`Rule ${rule.id} saved`);
              e.target.reset();
            })
            .then(refresh)
            .catch(fail("rule"));
        },
      },
      h("label", {}, "id ", fields.id),
      h("label", {}, fields.channel),
      h("label", {}, fields.direction),
      h("label", {}, "enter ", fields.enter),
      h("label", {}, "exit ", fields.exit),
      h("label", {}, "for ", fields.minMinutes, " min"),
      h("label", {}, "clear after ", fields.clearMinutes, " min"),
      h("button", { type: "submit" }, "Save rule"),
    );
  }

  function renderRules() {
    ruleRows.replaceChildren(
      ...view.rules.map((r) => {
        const ev = view.events?.[r.id];
        return h(
          "tr",
          { dataset: { rule: r.id } },
          h("td", {}, r.id),
          h("td", {}, NAMES[r.channel] ?? r.channel),
          h("td", {}, r.direction),
          h("td.num", {}, `${num(r.enter)} / ${num(r.exit)}`),
          h("td", {}, `${duration(r.minDurationMs)} / ${duration(r.clearDurationMs)}`),
          h("td", {}, ev ? h(`span.badge.${ev.state === "normal" ? "ok" : "warn"}`, {}, ev.state) : ""),
          h("td", {}, h("button.small", { onclick: () => deleteRule(r.id), dataset: { deleteRule: r.id } }, "delete")),
        );
      }),
    );
  }

  async function deleteRule(ruleId) {
    await command(deviceId, { type: "deleteRule", ruleId })
      .then(() => toast(`Rule ${ruleId} deleted`))
      .then(refresh)
      .catch(fail("delete rule"));
  }

  // ---- subscriptions
  const subsTable = h("div", { id: "subscription-table" });
  subsPanel.append(h("h2", {}, "Subscriptions"), subsTable, h("h3", {}, "Add a subscription"), subscriptionForm());

  function subscriptionForm() {
    const id = h("input", { name: "id", required: true, pattern: "[A-Za-z0-9_-]{1,64}", placeholder: "ops-hook", size: 12 });
    // the built-in providers are offered; a custom integration's name (1-32 of [a-z0-9-]) may be typed
    const provider = h("input", { name: "provider", list: "providers", value: "webhook", required: true, pattern: "[a-z0-9-]{1,32}", size: 10 });
    const providers = h("datalist", { id: "providers" }, ...["webhook", "email", "push", "thermostat"].map((p) => h("option", { value: p })));
    const target = h("input", { name: "target", required: true, placeholder: "https://example.com/hook", size: 28 });
    const kinds = h("input", { name: "kinds", placeholder: "event.start,event.end (empty: all)", size: 26 });
    const secret = h("input", { name: "secret", placeholder: "whsec_… (optional)", size: 16 });
    return h(
      "form.inline",
      {
        id: "subscription-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const list = kinds.value.split(",").map((k) => k.trim()).filter(Boolean);
          const subscription = { id: id.value.trim(), provider: provider.value, match: list.length > 0 ? { kinds: list } : {}, target: target.value.trim() };
          if (secret.value.trim() !== "") subscription.secret = secret.value.trim();
          await command(deviceId, { type: "subscribe", subscription })
            .then(() => {
              toast(`Subscription ${subscription.id} saved`);
              e.target.reset();
            })
            .then(reload)
            .catch(fail("subscribe"));
        },
      },
      h("label", {}, "id ", id),
      h("label", {}, "provider ", provider, providers),
      h("label", {}, "target ", target),
      h("label", {}, "kinds ", kinds),
      h("label", {}, secret),
      h("button", { type: "submit" }, "Subscribe"),
    );
  }

  function renderSubscriptions() {
    subsTable.replaceChildren(
      view.subscriptions.length === 0
        ? h("p.muted", {}, "None: alerts of this device go nowhere but this page.")
        : h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ["id", "provider", "target", "match", "signed", ""].map((t) => h("th", {}, t)))),
            h(
              "tbody",
              { id: "subscription-rows" },
              ...view.subscriptions.map((s) =>
                h(
                  "tr",
                  { dataset: { subscription: s.id } },
                  h("td", {}, s.id),
                  h("td", {}, s.provider),
                  h("td.wrap", {}, s.target),
                  h("td", {}, Object.entries(s.match ?? {}).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ") || "everything"),
                  h("td", {}, s.secret ? "yes" : ""),
                  h("td", {}, h("button.small", { onclick: () => unsubscribe(s.id), dataset: { unsubscribe: s.id } }, "delete")),
                ),
              ),
            ),
          ),
    );
  }

  async function unsubscribe(subscriptionId) {
    await command(deviceId, { type: "unsubscribe", subscriptionId })
      .then(() => toast(`Subscription ${subscriptionId} deleted`))
      .then(reload)
      .catch(fail("unsubscribe"));
  }

  return {
    rulesPanel,
    subsPanel,
    render(next) {
      view = next;
      renderRules();
      renderSubscriptions();
    },
  };
}
