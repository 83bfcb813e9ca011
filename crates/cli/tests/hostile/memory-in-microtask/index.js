// Out of memory inside a promise job.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  await Promise.resolve(); const keep = []; for (;;) keep.push(new Array(100000).fill(1))
}
