export * from './protocol';
export * from './controller';
export * from './http';
export * from './mux';
export * from './shared';
export * from './useLogStream';
