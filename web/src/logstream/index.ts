export * from './protocol';
export * from './controller';
export * from './http';
export * from './useLogStream';
