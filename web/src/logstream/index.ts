export * from './protocol';
export * from './controller';
export * from './useLogStream';
