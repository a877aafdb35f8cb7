// The right-hand panels: drills (faults injected into the stand-ins), scenarios, and the stand-ins' state.
import { el, mrkdwn } from "./blocks.js";

const $ = (id) => document.getElementById(id);

export function renderSidebar(state, actions) {
  renderDrills(state, actions);
  renderScenarios(state, actions);
  renderWorld(state);
}

function renderDrills(state, { setDrill, ctx }) {
  $("drills").replaceChildren(...state.drills.map((drill) => {
    const row = el("label", "drill" + (drill.on ? " on" : "") + (drill.unavailable ? " unavailable" : ""));
    row.dataset.drill = drill.name;
    const box = el("input");
    box.type = "checkbox";
    box.checked = drill.on;
    box.disabled = Boolean(drill.unavailable) && !drill.on;
    box.addEventListener("change", () => setDrill(drill.name, box.checked));
    const text = el("div", "drill-text");
    text.append(el("div", "drill-label", drill.label), mrkdwn(drill.about, ctx, "drill-about"));
    if (drill.unavailable) text.append(el("div", "drill-why", drill.unavailable));
    row.append(box, text);
    return row;
  }));
}

function renderScenarios(state, { startScenario, ctx }) {
  const select = $("scenario");
  const chosen = select.value;
  if (select.options.length !== state.scenarios.length) {
    select.replaceChildren(...state.scenarios.map((s) => {
      const option = el("option", null, s.name);
      option.value = s.id;
      return option;
    }));
  }
  // After a reload nothing is chosen yet: show the scenario that is running, not the first one.
  if (chosen) select.value = chosen;
  else if (state.scenario?.id) select.value = state.scenario.id;
  $("scenario-start").onclick = () => startScenario(select.value);
  const picked = state.scenarios.find((s) => s.id === select.value);
  const about = $("scenario-about");
  about.replaceChildren();
  if (picked) {
    about.append(mrkdwn(picked.description, ctx, "scenario-description"));
    const tries = el("ul", "scenario-try");
    picked.try.forEach((line) => tries.append(el("li", null, line)));
    about.append(el("div", "panel-sub", "Try"), tries);
  }
  select.onchange = () => renderScenarios(state, { startScenario, ctx });
  const running = state.scenario;
  const status = $("scenario-status");
  status.replaceChildren();
  if (running) {
    const where = running.done ? (running.error ? "stopped: " + running.error : "all steps applied")
      : `step ${running.step} of ${running.steps}`;
    status.append(el("div", "scenario-running", `${running.name}: ${where}`));
    if (running.note) status.append(el("div", "scenario-note", running.note));
  }
}

function renderWorld(state) {
  const world = state.world;
  const b = world.backend;
  const lines = [
    `Backend ${b.version} \u00b7 health ${b.health} \u00b7 ${b.global_halted ? "GLOBAL HALT" : "trading"} \u00b7 revision ${b.revision}`,
    b.disabled_scopes.length ? `Disabled: ${b.disabled_scopes.join(", ")}` : "No scoped disables",
    world.cosmos.running ? "Cosmos: local Cosmos-protocol server" : `Cosmos: not running (${world.cosmos.why})`,
    world.prometheus.running ? "Prometheus: local, scraping the backend's /metrics every second"
      : `Prometheus: not running (${world.prometheus.why})`,
    world.state,
  ];
  $("world").replaceChildren(...lines.map((line) => el("div", "world-line", line)),
    ...(world.audit || []).map((line) => el("div", "world-line audit-line", line)));
}
