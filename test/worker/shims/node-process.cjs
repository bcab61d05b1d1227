// `require('node:process')` inside the pool's runner: workerd's nodejs_compat global, as Node has it.
module.exports = globalThis.process;
