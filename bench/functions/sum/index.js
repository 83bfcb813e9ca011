// add for the access phase: the same sum from an invoke's event ({x, y}) and from the
// integration request of a route (its body), so that one function serves both loads.
exports.main = async (event) => {
  const input = typeof event.body === 'string' ? JSON.parse(event.body) : event;
  return input.x + input.y;
};
