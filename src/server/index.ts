export { createTaskwireServer, type TaskwireServer, type TaskwireServerOptions } from './server.js';
export { typeUrl } from '../contract.js';
export { defaultsFromOption, keyReader, problemDecoding, taskTypesOf, type TaskDefaults, type TaskServiceDefinition, type TaskServiceOptions } from './task-types.js';
export { MAX_SUBMIT_BATCH } from './task-service.js';
export { parseTokens, readTokensFile, rolesFor, ROLES, tokenAuth, type Role, type TokenEntry } from './access.js';
