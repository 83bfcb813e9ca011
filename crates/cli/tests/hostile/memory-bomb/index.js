// Arrays without end.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const keep = []; for (;;) keep.push(new Array(100000).fill(1))
}
