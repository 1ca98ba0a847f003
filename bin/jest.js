#!/usr/bin/env node
'use strict';
// `npm test`'s jest, on the project's Node runtime (bin/runtime.js): on an older Node, jest runs again on Node 24.
if (!require('./runtime').reexecOnRuntime()) require('jest/bin/jest');
