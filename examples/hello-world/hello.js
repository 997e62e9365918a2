#!/usr/bin/env node
'use strict';
// Hello world through an amqp-mesh router: a receiver on `closest.hello`, a sender, one message,
// and the outcome the receiver gave travelling back to the sender.
//
//   node examples/hello-world/hello.js [PORT]        (router from `npm start` listens on 5672)
const rhea = require('rhea');

const port = Number(process.argv[2] || 5672);
const address = 'closest.hello';
const receiverSide = rhea.create_container({ id: 'hello-receiver' }).connect({ host: '127.0.0.1', port, reconnect: false });
const receiver = receiverSide.open_receiver(address);

receiver.on('message', (ctx) => {
  console.log(`received: ${ctx.message.body}`);
});

receiver.on('receiver_open', () => {
  const senderSide = rhea.create_container({ id: 'hello-sender' }).connect({ host: '127.0.0.1', port, reconnect: false });
  const sender = senderSide.open_sender(address);
  sender.once('sendable', () => sender.send({ body: 'Hello, mesh!' }));
  sender.on('accepted', () => {
    console.log('outcome: accepted');
    senderSide.close();
    receiverSide.close();
  });
});

for (const side of [receiverSide]) {
  side.on('disconnected', (ctx) => {
    if (ctx.error) {
      console.error(`cannot reach the router on 127.0.0.1:${port}: ${ctx.error.message || ctx.error}`);
      process.exit(1);
    }
  });
}
