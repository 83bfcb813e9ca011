// The sdk phase's CDN measurement: the length of a field sent inline
// (event.data) or of the temporary object a CDN field names (event.url).
exports.main = async (event) => {
  if (typeof event.url === 'string') return (await (await fetch(event.url)).arrayBuffer()).byteLength;
  return event.data.length;
};
