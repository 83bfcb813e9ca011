// A loop compiled at run time.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return eval('for (;;) {}')
}
