// Out of memory in a job nothing awaits, behind a promise that never settles.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  Promise.resolve().then(() => { const keep = []; for (;;) keep.push(new Array(100000).fill(1)) }); return new Promise(() => {})
}
