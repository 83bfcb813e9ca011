// Server-sent events from an event function with context.sse(), as in
// CloudBase's functions framework. A caller that does not accept
// text/event-stream gets the return value instead.
exports.main = async function (event, context) {
  const sse = context.sse?.();
  if (!sse || sse.closed) {
    return 'ask with Accept: text/event-stream for events';
  }
  const text = 'Streaming, one character at a time.';
  for (const character of text) {
    if (sse.closed) break;
    sse.send({ data: character });
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  sse.end({ event: 'done', data: { characters: text.length } });
  return '';
};
