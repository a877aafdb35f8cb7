// Block Kit and mrkdwn for the local workspace, rendered with createElement and text nodes only:
// everything here comes from the bot (and so, partly, from what people typed), so nothing is ever
// parsed as HTML.

const EMOJI = {
  warning: "\u26a0\ufe0f", x: "\u274c", white_check_mark: "\u2705", rotating_light: "\ud83d\udea8",
  no_entry: "\u26d4", information_source: "\u2139\ufe0f", hourglass: "\u231b", ice_cube: "\ud83e\uddca",
  grey_question: "\u2754", question: "\u2753", large_green_circle: "\ud83d\udfe2", red_circle: "\ud83d\udd34",
  white_circle: "\u26aa", hourglass_flowing_sand: "\u23f3", gear: "\u2699\ufe0f", repeat: "\ud83d\udd01", recycle: "\u267b\ufe0f", door: "\ud83d\udeaa",
  point_right: "\ud83d\udc49", octagonal_sign: "\ud83d\uded1", memo: "\ud83d\udcdd", mag: "\ud83d\udd0d",
  leftwards_arrow_with_hook: "\u21a9\ufe0f", sunny: "\u2600\ufe0f", rocket: "\ud83d\ude80", mega: "\ud83d\udce3",
  lock: "\ud83d\udd12", heavy_minus_sign: "\u2796", heavy_check_mark: "\u2714\ufe0f", floppy_disk: "\ud83d\udcbe",
  file_cabinet: "\ud83d\uddc4\ufe0f", construction: "\ud83d\udea7", arrow_right: "\u27a1\ufe0f",
  arrow_forward: "\u25b6\ufe0f", clipboard: "\ud83d\udccb", stop_sign: "\ud83d\uded1",
  eyes: "\ud83d\udc40", closed_lock_with_key: "\ud83d\udd10", twisted_rightwards_arrows: "\ud83d\udd00",
  no_entry_sign: "\ud83d\udeab",
};

// Slack escapes &, < and > in text it did not format; show them as the characters they stand for.
function decode(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function emojify(text) {
  return text.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
}

// Code first (nothing inside it is formatted), then links and mentions, then the emphasis marks,
// which only count at word boundaries (so snake_case and 2*3*4 stay as they are).
const INLINE = new RegExp([
  "(?<code>`[^`\\n]+`)",
  "(?<angle><[^<>\\n]+>)",
  "(?<bold>(?<![\\w*])\\*(?=\\S)[^*\\n]*?\\S?\\*(?![\\w*]))",
  "(?<italic>(?<![\\w_])_(?=\\S)[^_\\n]*?_(?![\\w_]))",
  "(?<strike>(?<![\\w~])~(?=\\S)[^~\\n]*?~(?![\\w~]))",
].join("|"), "g");

// Plain text: entities decoded, emoji shown, bare web addresses linked (as Slack's client does).
function plain(text, parent) {
  const decoded = decode(text);
  let at = 0;
  for (const match of decoded.matchAll(/https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)]/g)) {
    if (match.index > at) parent.append(emojify(decoded.slice(at, match.index)));
    parent.append(link(match[0], match[0]));
    at = match.index + match[0].length;
  }
  if (at < decoded.length) parent.append(emojify(decoded.slice(at)));
}

function link(url, label) {
  const node = el("a", null, label);
  node.href = url;
  node.target = "_blank";
  node.rel = "noopener noreferrer";
  return node;
}

function inline(text, parent, ctx) {
  let at = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > at) plain(text.slice(at, match.index), parent);
    const g = match.groups;
    const whole = match[0];
    if (g.code) parent.append(el("code", null, decode(whole.slice(1, -1))));
    else if (g.angle) parent.append(angle(whole.slice(1, -1), ctx));
    else {
      const tag = g.bold ? "b" : g.italic ? "i" : "s";
      const node = el(tag);
      inline(whole.slice(1, -1), node, ctx);
      parent.append(node);
    }
    at = match.index + whole.length;
  }
  if (at < text.length) plain(text.slice(at), parent);
}

function angle(inner, ctx) {
  const [target, label] = inner.split("|", 2);
  if (target.startsWith("@U") || target.startsWith("@W")) {
    const id = target.slice(1);
    return el("span", "mention", "@" + (ctx.names[id] || label || id));
  }
  if (target.startsWith("#C")) {
    return el("span", "mention", "#" + (label || ctx.channels[target.slice(1)] || target.slice(1)));
  }
  if (target.startsWith("!")) return el("span", "mention", "@" + (label || target.slice(1).split("^")[0]));
  const url = decode(target);
  if (!/^(https?:|mailto:)/i.test(url)) return document.createTextNode(decode(label || target));
  return link(url, decode(label || target));
}

// A mrkdwn string: ```pre``` blocks, then inline formatting on the rest (new lines kept by CSS).
export function mrkdwn(text, ctx, className = "mrkdwn") {
  const root = el("div", className);
  const parts = String(text || "").split("```");
  parts.forEach((part, i) => {
    if (i % 2 === 1 && i < parts.length - 1) root.append(el("pre", null, decode(part.replace(/^\n|\n$/g, ""))));
    else inline(i % 2 === 1 ? "```" + part : part, root, ctx);
  });
  return root;
}

function textObject(obj, ctx, className) {
  if (!obj) return el("div", className);
  if (obj.type === "mrkdwn") return mrkdwn(obj.text, ctx, className);
  return el("div", className, emojify(String(obj.text || "")));
}

function button(element, ctx) {
  const node = el("button", "bk-button" + (element.style ? " " + element.style : ""));
  node.textContent = emojify(element.text ? String(element.text.text || "") : element.action_id);
  node.type = "button";
  node.dataset.actionId = element.action_id || "";
  node.addEventListener("click", () => ctx.onButton(element, node));
  return node;
}

const RENDER = {
  header: (block, ctx) => el("div", "bk-header", emojify(String(block.text?.text || ""))),
  divider: () => el("hr", "bk-divider"),
  section: (block, ctx) => {
    const node = el("div", "bk-section");
    const main = el("div", "bk-section-main");
    if (block.text) main.append(textObject(block.text, ctx, "bk-text"));
    if (block.fields?.length) {
      const fields = el("div", "bk-fields");
      block.fields.forEach((field) => fields.append(textObject(field, ctx, "bk-field")));
      main.append(fields);
    }
    node.append(main);
    if (block.accessory?.type === "button") node.append(button(block.accessory, ctx));
    return node;
  },
  context: (block, ctx) => {
    const node = el("div", "bk-context");
    (block.elements || []).forEach((item) => {
      if (item.type === "image") node.append(el("span", "bk-context-image", item.alt_text || ""));
      else node.append(textObject(item, ctx, "bk-context-item"));
    });
    return node;
  },
  actions: (block, ctx) => {
    const node = el("div", "bk-actions");
    (block.elements || []).forEach((item) => {
      node.append(item.type === "button" ? button(item, ctx) : el("span", "bk-unsupported", `[${item.type}]`));
    });
    return node;
  },
};

export function renderBlocks(blocks, ctx) {
  const root = el("div", "blocks");
  for (const block of blocks) {
    const render = RENDER[block.type];
    root.append(render ? render(block, ctx) : el("div", "bk-unsupported", `[unsupported block: ${block.type}]`));
  }
  return root;
}

export { el, emojify };
