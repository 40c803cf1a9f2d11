// The WebSocket to the bridge: reconnects with back-off, re-sends the subscription.

export class Live {
  constructor(handlers, onState) {
    this.handlers = handlers;
    this.onState = onState;
    this.subscription = { type: "subscribe", cars: [], rate_hz: 20, map: true };
    this.delay = 250;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 250;
      this.onState("live");
      ws.send(JSON.stringify(this.subscription));
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const handler = this.handlers[message.type];
      if (handler) handler(message.data, message);
    };
    ws.onclose = () => {
      this.onState("offline");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
  }

  subscribe(cars, rate_hz = 20) {
    this.subscription = { ...this.subscription, cars, rate_hz };
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(this.subscription));
  }
}
