// The bot's App Home as the chosen person sees it (what the bot published with views.publish), and the
// switch between it and the channel. Its buttons go to the bot as clicks in a view (/api/home-click).
import { el, renderBlocks } from "./blocks.js";

const $ = (id) => document.getElementById(id);

export function showTab(tab, state, ctx, { homeButton }) {
  const home = tab === "home";
  $("messages").hidden = home;
  $("composer-input").hidden = home;
  $("home").hidden = !home;
  $("channel-name").classList.toggle("active", !home);
  $("home-tab").classList.toggle("active", home);
  $("channel-title").textContent = home ? "opsbot \u00b7 Home" : `# ${state.channel.name}`;
  if (!home) return;
  if (!state.home) {
    $("home").replaceChildren(el("div", "empty", "Opening the App Home\u2026"));
    return;
  }
  $("home").replaceChildren(renderBlocks(state.home.blocks || [], { ...ctx, onButton: homeButton }));
}
