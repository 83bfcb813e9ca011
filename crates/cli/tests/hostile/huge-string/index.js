// A string that doubles until something gives.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  let s = 'x'; for (;;) s += s
}
