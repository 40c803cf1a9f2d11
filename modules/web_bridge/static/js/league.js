// The public league page: rendered by the bridge; redrawn when a `league` message says the
// standings changed (a session attached, a stewards' decision).

import { Live } from "./live.js";

async function refresh() {
  const response = await fetch(location.pathname);
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.querySelector("#league");
  if (fresh) document.querySelector("#league").replaceChildren(...fresh.childNodes);
}

const live = new Live({ league: refresh, snapshot: refresh }, (state) => {
  document.body.dataset.connection = state;
});
live.subscription = { ...live.subscription, cars: [], map: false };
