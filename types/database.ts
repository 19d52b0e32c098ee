export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[]

export type Database = {
  
  "public": {
          Tables: {
            "api_keys": {
                  Row: {
                    "created_at": string,"created_by": string | null,"expires_at": string | null,"id": string,"name": string,"prefix": string,"revoked_at": string | null,"scopes": (string)[],"tenant_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"created_by"?: string | null,"expires_at"?: string | null,"id"?: string,"name": string,"prefix": string,"revoked_at"?: string | null,"scopes": (string)[],"tenant_id": string,"updated_at"?: string
                  }
                  Update: {
                    "created_at"?: string,"created_by"?: string | null,"expires_at"?: string | null,"id"?: string,"name"?: string,"prefix"?: string,"revoked_at"?: string | null,"scopes"?: (string)[],"tenant_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "api_keys_created_by_fkey"
      columns: ["created_by"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "api_keys_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"attachments": {
                  Row: {
                    "bucket": string,"content_type": string,"created_at": string,"file_name": string,"id": string,"message_id": string | null,"path": string,"size_bytes": number,"status": string,"tenant_id": string,"ticket_id": string,"updated_at": string,"uploaded_by": string | null
                  }
                  ComputedFields: never
                  Insert: {
                    "bucket"?: string,"content_type"?: string,"created_at"?: string,"file_name": string,"id"?: string,"message_id"?: string | null,"path": string,"size_bytes": number,"status"?: string,"tenant_id": string,"ticket_id": string,"updated_at"?: string,"uploaded_by"?: string | null
                  }
                  Update: {
                    "bucket"?: string,"content_type"?: string,"created_at"?: string,"file_name"?: string,"id"?: string,"message_id"?: string | null,"path"?: string,"size_bytes"?: number,"status"?: string,"tenant_id"?: string,"ticket_id"?: string,"updated_at"?: string,"uploaded_by"?: string | null
                  }
                  Relationships: [
                    {
      foreignKeyName: "attachments_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "attachments_tenant_id_message_id_fkey"
      columns: ["tenant_id","message_id"]
isOneToOne: false
      referencedRelation: "ticket_messages"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "attachments_tenant_id_ticket_id_fkey"
      columns: ["tenant_id","ticket_id"]
isOneToOne: false
      referencedRelation: "tickets"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "attachments_uploaded_by_fkey"
      columns: ["uploaded_by"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    }
                  ]
                },"audit_logs": {
                  Row: {
                    "action": string,"actor_issuer": string | null,"actor_role": string,"actor_subject": string | null,"actor_user_id": string | null,"changed_fields": (string)[] | null,"created_at": string,"id": number,"image_bytes": number | null,"new_data": Json | null,"old_data": Json | null,"record_key": NonNullable<Json>,"redacted_at": string | null,"table_name": string,"tenant_id": string | null,"transaction_id": number
                  }
                  ComputedFields: never
                  Insert: {
                    "action": string,"actor_issuer"?: string | null,"actor_role": string,"actor_subject"?: string | null,"actor_user_id"?: string | null,"changed_fields"?: (string)[] | null,"created_at"?: string,"id"?: never,"image_bytes"?: number | null,"new_data"?: Json | null,"old_data"?: Json | null,"record_key": NonNullable<Json>,"redacted_at"?: string | null,"table_name": string,"tenant_id"?: string | null,"transaction_id"?: number
                  }
                  Update: {
                    "action"?: string,"actor_issuer"?: string | null,"actor_role"?: string,"actor_subject"?: string | null,"actor_user_id"?: string | null,"changed_fields"?: (string)[] | null,"created_at"?: string,"id"?: never,"image_bytes"?: number | null,"new_data"?: Json | null,"old_data"?: Json | null,"record_key"?: NonNullable<Json>,"redacted_at"?: string | null,"table_name"?: string,"tenant_id"?: string | null,"transaction_id"?: number
                  }
                  Relationships: [
                    
                  ]
                },"automation_rules": {
                  Row: {
                    "actions": NonNullable<Json>,"active": boolean,"after_minutes": number | null,"conditions": NonNullable<Json>,"created_at": string,"created_by": string | null,"description": string | null,"event": string,"id": string,"name": string,"position": number,"tenant_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "actions": NonNullable<Json>,"active"?: boolean,"after_minutes"?: number | null,"conditions"?: NonNullable<Json>,"created_at"?: string,"created_by"?: string | null,"description"?: string | null,"event": string,"id"?: string,"name": string,"position"?: number,"tenant_id": string,"updated_at"?: string
                  }
                  Update: {
                    "actions"?: NonNullable<Json>,"active"?: boolean,"after_minutes"?: number | null,"conditions"?: NonNullable<Json>,"created_at"?: string,"created_by"?: string | null,"description"?: string | null,"event"?: string,"id"?: string,"name"?: string,"position"?: number,"tenant_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "automation_rules_created_by_fkey"
      columns: ["created_by"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "automation_rules_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"automation_runs": {
                  Row: {
                    "actions_applied": number,"created_at": string,"error": string | null,"event": string,"event_id": string,"failed_action": number | null,"id": number,"outcome": string,"rule_id": string,"tenant_id": string,"ticket_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "actions_applied"?: number,"created_at"?: string,"error"?: string | null,"event": string,"event_id": string,"failed_action"?: number | null,"id"?: never,"outcome": string,"rule_id": string,"tenant_id": string,"ticket_id": string
                  }
                  Update: {
                    "actions_applied"?: number,"created_at"?: string,"error"?: string | null,"event"?: string,"event_id"?: string,"failed_action"?: number | null,"id"?: never,"outcome"?: string,"rule_id"?: string,"tenant_id"?: string,"ticket_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "automation_runs_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "automation_runs_tenant_id_rule_id_fkey"
      columns: ["tenant_id","rule_id"]
isOneToOne: false
      referencedRelation: "automation_rules"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "automation_runs_tenant_id_ticket_id_fkey"
      columns: ["tenant_id","ticket_id"]
isOneToOne: false
      referencedRelation: "tickets"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"canned_responses": {
                  Row: {
                    "body": string,"created_at": string,"created_by": string | null,"id": string,"owner_id": string | null,"scope": string,"short_code": string,"team_id": string | null,"tenant_id": string,"title": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "body": string,"created_at"?: string,"created_by"?: string | null,"id"?: string,"owner_id"?: string | null,"scope": string,"short_code": string,"team_id"?: string | null,"tenant_id": string,"title": string,"updated_at"?: string
                  }
                  Update: {
                    "body"?: string,"created_at"?: string,"created_by"?: string | null,"id"?: string,"owner_id"?: string | null,"scope"?: string,"short_code"?: string,"team_id"?: string | null,"tenant_id"?: string,"title"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "canned_responses_created_by_fkey"
      columns: ["created_by"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "canned_responses_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "canned_responses_tenant_id_owner_id_fkey"
      columns: ["tenant_id","owner_id"]
isOneToOne: false
      referencedRelation: "memberships"
      referencedColumns: ["tenant_id","user_id"]
    },{
      foreignKeyName: "canned_responses_tenant_id_team_id_fkey"
      columns: ["tenant_id","team_id"]
isOneToOne: false
      referencedRelation: "teams"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"custom_field_definitions": {
                  Row: {
                    "created_at": string,"id": string,"key": string,"label": string,"options": (string)[],"position": number,"required": boolean,"tenant_id": string,"type": string,"updated_at": string,"visible_to_customers": boolean
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"id"?: string,"key": string,"label": string,"options"?: (string)[],"position"?: number,"required"?: boolean,"tenant_id": string,"type": string,"updated_at"?: string,"visible_to_customers"?: boolean
                  }
                  Update: {
                    "created_at"?: string,"id"?: string,"key"?: string,"label"?: string,"options"?: (string)[],"position"?: number,"required"?: boolean,"tenant_id"?: string,"type"?: string,"updated_at"?: string,"visible_to_customers"?: boolean
                  }
                  Relationships: [
                    {
      foreignKeyName: "custom_field_definitions_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"departments": {
                  Row: {
                    "created_at": string,"id": string,"key": string,"name": string,"tenant_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"id"?: string,"key": string,"name": string,"tenant_id": string,"updated_at"?: string
                  }
                  Update: {
                    "created_at"?: string,"id"?: string,"key"?: string,"name"?: string,"tenant_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "departments_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"invitations": {
                  Row: {
                    "accepted_at": string | null,"accepted_by": string | null,"created_at": string,"email": string,"expires_at": string,"id": string,"invited_by": string | null,"role": string,"tenant_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "accepted_at"?: string | null,"accepted_by"?: string | null,"created_at"?: string,"email": string,"expires_at"?: string,"id"?: string,"invited_by"?: string | null,"role"?: string,"tenant_id": string,"updated_at"?: string
                  }
                  Update: {
                    "accepted_at"?: string | null,"accepted_by"?: string | null,"created_at"?: string,"email"?: string,"expires_at"?: string,"id"?: string,"invited_by"?: string | null,"role"?: string,"tenant_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "invitations_accepted_by_fkey"
      columns: ["accepted_by"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "invitations_invited_by_fkey"
      columns: ["invited_by"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "invitations_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"kb_chunks": {
                  Row: {
                    "content": string,"created_at": string,"document_id": string,"id": string,"knowledge_base_id": string,"ordinal": number,"search_english": unknown,"search_simple": unknown,"tenant_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "content": string,"created_at"?: string,"document_id": string,"id"?: string,"knowledge_base_id": string,"ordinal": number,"search_english"?: never,"search_simple"?: never,"tenant_id": string
                  }
                  Update: {
                    "content"?: string,"created_at"?: string,"document_id"?: string,"id"?: string,"knowledge_base_id"?: string,"ordinal"?: number,"search_english"?: never,"search_simple"?: never,"tenant_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "kb_chunks_tenant_id_document_id_fkey"
      columns: ["tenant_id","document_id"]
isOneToOne: false
      referencedRelation: "kb_documents"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "kb_chunks_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "kb_chunks_tenant_id_knowledge_base_id_fkey"
      columns: ["tenant_id","knowledge_base_id"]
isOneToOne: false
      referencedRelation: "voice_knowledge_bases"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"kb_documents": {
                  Row: {
                    "content": string,"created_at": string,"embedded_chunks": number,"embeddings_written_at": string | null,"format": string,"id": string,"knowledge_base_id": string,"source": string | null,"tenant_id": string,"title": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "content": string,"created_at"?: string,"embedded_chunks"?: number,"embeddings_written_at"?: string | null,"format"?: string,"id"?: string,"knowledge_base_id": string,"source"?: string | null,"tenant_id": string,"title": string,"updated_at"?: string
                  }
                  Update: {
                    "content"?: string,"created_at"?: string,"embedded_chunks"?: number,"embeddings_written_at"?: string | null,"format"?: string,"id"?: string,"knowledge_base_id"?: string,"source"?: string | null,"tenant_id"?: string,"title"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "kb_documents_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "kb_documents_tenant_id_knowledge_base_id_fkey"
      columns: ["tenant_id","knowledge_base_id"]
isOneToOne: false
      referencedRelation: "voice_knowledge_bases"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"macros": {
                  Row: {
                    "actions": NonNullable<Json>,"created_at": string,"created_by": string | null,"description": string | null,"id": string,"name": string,"owner_id": string | null,"scope": string,"tenant_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "actions": NonNullable<Json>,"created_at"?: string,"created_by"?: string | null,"description"?: string | null,"id"?: string,"name": string,"owner_id"?: string | null,"scope": string,"tenant_id": string,"updated_at"?: string
                  }
                  Update: {
                    "actions"?: NonNullable<Json>,"created_at"?: string,"created_by"?: string | null,"description"?: string | null,"id"?: string,"name"?: string,"owner_id"?: string | null,"scope"?: string,"tenant_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "macros_created_by_fkey"
      columns: ["created_by"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "macros_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "macros_tenant_id_owner_id_fkey"
      columns: ["tenant_id","owner_id"]
isOneToOne: false
      referencedRelation: "memberships"
      referencedColumns: ["tenant_id","user_id"]
    }
                  ]
                },"memberships": {
                  Row: {
                    "available": boolean,"created_at": string,"id": string,"role": string,"tenant_id": string,"updated_at": string,"user_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "available"?: boolean,"created_at"?: string,"id"?: string,"role"?: string,"tenant_id": string,"updated_at"?: string,"user_id": string
                  }
                  Update: {
                    "available"?: boolean,"created_at"?: string,"id"?: string,"role"?: string,"tenant_id"?: string,"updated_at"?: string,"user_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "memberships_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "memberships_user_id_fkey"
      columns: ["user_id"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    }
                  ]
                },"notifications": {
                  Row: {
                    "actor_user_id": string | null,"created_at": string,"data": NonNullable<Json>,"id": string,"read_at": string | null,"tenant_id": string,"ticket_id": string | null,"type": string,"updated_at": string,"user_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "actor_user_id"?: string | null,"created_at"?: string,"data"?: NonNullable<Json>,"id"?: string,"read_at"?: string | null,"tenant_id": string,"ticket_id"?: string | null,"type": string,"updated_at"?: string,"user_id": string
                  }
                  Update: {
                    "actor_user_id"?: string | null,"created_at"?: string,"data"?: NonNullable<Json>,"id"?: string,"read_at"?: string | null,"tenant_id"?: string,"ticket_id"?: string | null,"type"?: string,"updated_at"?: string,"user_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "notifications_actor_user_id_fkey"
      columns: ["actor_user_id"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "notifications_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "notifications_tenant_id_ticket_id_fkey"
      columns: ["tenant_id","ticket_id"]
isOneToOne: false
      referencedRelation: "tickets"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "notifications_tenant_id_user_id_fkey"
      columns: ["tenant_id","user_id"]
isOneToOne: false
      referencedRelation: "memberships"
      referencedColumns: ["tenant_id","user_id"]
    }
                  ]
                },"platform_admins": {
                  Row: {
                    "created_at": string,"user_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"user_id": string
                  }
                  Update: {
                    "created_at"?: string,"user_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "platform_admins_user_id_fkey"
      columns: ["user_id"]
isOneToOne: true
      referencedRelation: "users"
      referencedColumns: ["id"]
    }
                  ]
                },"sla_policies": {
                  Row: {
                    "business_hours": Json | null,"created_at": string,"first_response_minutes": number,"id": string,"next_response_minutes": number | null,"priority": string,"resolution_minutes": number,"team_id": string | null,"tenant_id": string,"updated_at": string,"warning_minutes": number | null
                  }
                  ComputedFields: never
                  Insert: {
                    "business_hours"?: Json | null,"created_at"?: string,"first_response_minutes": number,"id"?: string,"next_response_minutes"?: number | null,"priority": string,"resolution_minutes": number,"team_id"?: string | null,"tenant_id": string,"updated_at"?: string,"warning_minutes"?: number | null
                  }
                  Update: {
                    "business_hours"?: Json | null,"created_at"?: string,"first_response_minutes"?: number,"id"?: string,"next_response_minutes"?: number | null,"priority"?: string,"resolution_minutes"?: number,"team_id"?: string | null,"tenant_id"?: string,"updated_at"?: string,"warning_minutes"?: number | null
                  }
                  Relationships: [
                    {
      foreignKeyName: "sla_policies_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "sla_policies_tenant_id_team_id_fkey"
      columns: ["tenant_id","team_id"]
isOneToOne: false
      referencedRelation: "teams"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"tags": {
                  Row: {
                    "color": string | null,"created_at": string,"description": string | null,"id": string,"name": string,"tenant_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "color"?: string | null,"created_at"?: string,"description"?: string | null,"id"?: string,"name": string,"tenant_id": string,"updated_at"?: string
                  }
                  Update: {
                    "color"?: string | null,"created_at"?: string,"description"?: string | null,"id"?: string,"name"?: string,"tenant_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "tags_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"team_members": {
                  Row: {
                    "created_at": string,"id": string,"team_id": string,"tenant_id": string,"user_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"id"?: string,"team_id": string,"tenant_id": string,"user_id": string
                  }
                  Update: {
                    "created_at"?: string,"id"?: string,"team_id"?: string,"tenant_id"?: string,"user_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "team_members_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "team_members_tenant_id_team_id_fkey"
      columns: ["tenant_id","team_id"]
isOneToOne: false
      referencedRelation: "teams"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "team_members_tenant_id_user_id_fkey"
      columns: ["tenant_id","user_id"]
isOneToOne: false
      referencedRelation: "memberships"
      referencedColumns: ["tenant_id","user_id"]
    }
                  ]
                },"teams": {
                  Row: {
                    "auto_assign": string,"created_at": string,"department": string,"description": string | null,"id": string,"last_assigned_user_id": string | null,"lead_user_id": string | null,"name": string,"receives_department_tickets": boolean,"tenant_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "auto_assign"?: string,"created_at"?: string,"department": string,"description"?: string | null,"id"?: string,"last_assigned_user_id"?: string | null,"lead_user_id"?: string | null,"name": string,"receives_department_tickets"?: boolean,"tenant_id": string,"updated_at"?: string
                  }
                  Update: {
                    "auto_assign"?: string,"created_at"?: string,"department"?: string,"description"?: string | null,"id"?: string,"last_assigned_user_id"?: string | null,"lead_user_id"?: string | null,"name"?: string,"receives_department_tickets"?: boolean,"tenant_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "teams_tenant_id_department_fkey"
      columns: ["tenant_id","department"]
isOneToOne: false
      referencedRelation: "departments"
      referencedColumns: ["tenant_id","key"]
    },{
      foreignKeyName: "teams_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "teams_tenant_id_lead_user_id_fkey"
      columns: ["tenant_id","lead_user_id"]
isOneToOne: false
      referencedRelation: "memberships"
      referencedColumns: ["tenant_id","user_id"]
    }
                  ]
                },"tenant_org_links": {
                  Row: {
                    "created_at": string,"issuer": string,"org_id": string,"tenant_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"issuer": string,"org_id": string,"tenant_id": string
                  }
                  Update: {
                    "created_at"?: string,"issuer"?: string,"org_id"?: string,"tenant_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "tenant_org_links_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"tenant_services": {
                  Row: {
                    "attempts": number,"created_at": string,"credentials_encrypted": string | null,"credentials_revealed_at": string | null,"credentials_stored": boolean,"desired_state": string,"drift_detail": string | null,"drift_detected_at": string | null,"drift_repaired_at": string | null,"external_ids": NonNullable<Json>,"id": string,"last_error": string | null,"remove_after": string | null,"service": string,"state": string,"tenant_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "attempts"?: number,"created_at"?: string,"credentials_encrypted"?: string | null,"credentials_revealed_at"?: string | null,"credentials_stored"?: never,"desired_state"?: string,"drift_detail"?: string | null,"drift_detected_at"?: string | null,"drift_repaired_at"?: string | null,"external_ids"?: NonNullable<Json>,"id"?: string,"last_error"?: string | null,"remove_after"?: string | null,"service": string,"state"?: string,"tenant_id": string,"updated_at"?: string
                  }
                  Update: {
                    "attempts"?: number,"created_at"?: string,"credentials_encrypted"?: string | null,"credentials_revealed_at"?: string | null,"credentials_stored"?: never,"desired_state"?: string,"drift_detail"?: string | null,"drift_detected_at"?: string | null,"drift_repaired_at"?: string | null,"external_ids"?: NonNullable<Json>,"id"?: string,"last_error"?: string | null,"remove_after"?: string | null,"service"?: string,"state"?: string,"tenant_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "tenant_services_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"tenants": {
                  Row: {
                    "created_at": string,"deleted_at": string | null,"id": string,"name": string,"plan": string,"settings": NonNullable<Json>,"slug": string,"status": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"deleted_at"?: string | null,"id"?: string,"name": string,"plan"?: string,"settings"?: NonNullable<Json>,"slug": string,"status"?: string,"updated_at"?: string
                  }
                  Update: {
                    "created_at"?: string,"deleted_at"?: string | null,"id"?: string,"name"?: string,"plan"?: string,"settings"?: NonNullable<Json>,"slug"?: string,"status"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    
                  ]
                },"ticket_events": {
                  Row: {
                    "actor_user_id": string | null,"created_at": string,"data": NonNullable<Json>,"id": number,"tenant_id": string,"ticket_id": string,"type": string
                  }
                  ComputedFields: never
                  Insert: {
                    "actor_user_id"?: string | null,"created_at"?: string,"data"?: NonNullable<Json>,"id"?: never,"tenant_id": string,"ticket_id": string,"type": string
                  }
                  Update: {
                    "actor_user_id"?: string | null,"created_at"?: string,"data"?: NonNullable<Json>,"id"?: never,"tenant_id"?: string,"ticket_id"?: string,"type"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "ticket_events_actor_user_id_fkey"
      columns: ["actor_user_id"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "ticket_events_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "ticket_events_tenant_id_ticket_id_fkey"
      columns: ["tenant_id","ticket_id"]
isOneToOne: false
      referencedRelation: "tickets"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"ticket_followers": {
                  Row: {
                    "added_by": string | null,"created_at": string,"id": string,"reason": string,"tenant_id": string,"ticket_id": string,"user_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "added_by"?: string | null,"created_at"?: string,"id"?: string,"reason"?: string,"tenant_id": string,"ticket_id": string,"user_id": string
                  }
                  Update: {
                    "added_by"?: string | null,"created_at"?: string,"id"?: string,"reason"?: string,"tenant_id"?: string,"ticket_id"?: string,"user_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "ticket_followers_added_by_fkey"
      columns: ["added_by"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "ticket_followers_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "ticket_followers_tenant_id_ticket_id_fkey"
      columns: ["tenant_id","ticket_id"]
isOneToOne: false
      referencedRelation: "tickets"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "ticket_followers_tenant_id_user_id_fkey"
      columns: ["tenant_id","user_id"]
isOneToOne: false
      referencedRelation: "memberships"
      referencedColumns: ["tenant_id","user_id"]
    }
                  ]
                },"ticket_internal_fields": {
                  Row: {
                    "created_at": string,"custom_fields": NonNullable<Json>,"tenant_id": string,"ticket_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"custom_fields"?: NonNullable<Json>,"tenant_id": string,"ticket_id": string,"updated_at"?: string
                  }
                  Update: {
                    "created_at"?: string,"custom_fields"?: NonNullable<Json>,"tenant_id"?: string,"ticket_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "ticket_internal_fields_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "ticket_internal_fields_tenant_id_ticket_id_fkey"
      columns: ["tenant_id","ticket_id"]
isOneToOne: true
      referencedRelation: "tickets"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"ticket_messages": {
                  Row: {
                    "author_id": string | null,"content": string,"created_at": string,"edited_at": string | null,"id": string,"tenant_id": string,"ticket_id": string,"type": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "author_id"?: string | null,"content": string,"created_at"?: string,"edited_at"?: string | null,"id"?: string,"tenant_id": string,"ticket_id": string,"type"?: string,"updated_at"?: string
                  }
                  Update: {
                    "author_id"?: string | null,"content"?: string,"created_at"?: string,"edited_at"?: string | null,"id"?: string,"tenant_id"?: string,"ticket_id"?: string,"type"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "ticket_messages_author_id_fkey"
      columns: ["author_id"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "ticket_messages_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "ticket_messages_tenant_id_ticket_id_fkey"
      columns: ["tenant_id","ticket_id"]
isOneToOne: false
      referencedRelation: "tickets"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"tickets": {
                  Row: {
                    "assigned_to": string | null,"chatwoot_conversation_id": string | null,"closed_at": string | null,"created_at": string,"created_by": string | null,"custom_fields": NonNullable<Json>,"deleted_at": string | null,"department": string,"description": string | null,"due_date": string | null,"first_response_at": string | null,"first_response_due_at": string | null,"id": string,"merged_into_id": string | null,"metadata": NonNullable<Json>,"next_response_due_at": string | null,"number": number,"priority": string,"resolved_at": string | null,"search": unknown,"sla_first_response_breached_at": string | null,"sla_next_response_breached_at": string | null,"sla_paused_at": string | null,"sla_paused_minutes": number,"sla_resolution_breached_at": string | null,"status": string,"tags": (string)[],"team_id": string | null,"tenant_id": string,"title": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "assigned_to"?: string | null,"chatwoot_conversation_id"?: string | null,"closed_at"?: string | null,"created_at"?: string,"created_by"?: string | null,"custom_fields"?: NonNullable<Json>,"deleted_at"?: string | null,"department"?: string,"description"?: string | null,"due_date"?: string | null,"first_response_at"?: string | null,"first_response_due_at"?: string | null,"id"?: string,"merged_into_id"?: string | null,"metadata"?: NonNullable<Json>,"next_response_due_at"?: string | null,"number": number,"priority"?: string,"resolved_at"?: string | null,"search"?: never,"sla_first_response_breached_at"?: string | null,"sla_next_response_breached_at"?: string | null,"sla_paused_at"?: string | null,"sla_paused_minutes"?: number,"sla_resolution_breached_at"?: string | null,"status"?: string,"tags"?: (string)[],"team_id"?: string | null,"tenant_id": string,"title": string,"updated_at"?: string
                  }
                  Update: {
                    "assigned_to"?: string | null,"chatwoot_conversation_id"?: string | null,"closed_at"?: string | null,"created_at"?: string,"created_by"?: string | null,"custom_fields"?: NonNullable<Json>,"deleted_at"?: string | null,"department"?: string,"description"?: string | null,"due_date"?: string | null,"first_response_at"?: string | null,"first_response_due_at"?: string | null,"id"?: string,"merged_into_id"?: string | null,"metadata"?: NonNullable<Json>,"next_response_due_at"?: string | null,"number"?: number,"priority"?: string,"resolved_at"?: string | null,"search"?: never,"sla_first_response_breached_at"?: string | null,"sla_next_response_breached_at"?: string | null,"sla_paused_at"?: string | null,"sla_paused_minutes"?: number,"sla_resolution_breached_at"?: string | null,"status"?: string,"tags"?: (string)[],"team_id"?: string | null,"tenant_id"?: string,"title"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "tickets_created_by_fkey"
      columns: ["created_by"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "tickets_tenant_id_assigned_to_fkey"
      columns: ["tenant_id","assigned_to"]
isOneToOne: false
      referencedRelation: "memberships"
      referencedColumns: ["tenant_id","user_id"]
    },{
      foreignKeyName: "tickets_tenant_id_department_fkey"
      columns: ["tenant_id","department"]
isOneToOne: false
      referencedRelation: "departments"
      referencedColumns: ["tenant_id","key"]
    },{
      foreignKeyName: "tickets_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "tickets_tenant_id_merged_into_id_fkey"
      columns: ["tenant_id","merged_into_id"]
isOneToOne: false
      referencedRelation: "tickets"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "tickets_tenant_id_team_id_fkey"
      columns: ["tenant_id","team_id"]
isOneToOne: false
      referencedRelation: "teams"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"user_identities": {
                  Row: {
                    "created_at": string,"issuer": string,"subject": string,"user_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"issuer": string,"subject": string,"user_id": string
                  }
                  Update: {
                    "created_at"?: string,"issuer"?: string,"subject"?: string,"user_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "user_identities_user_id_fkey"
      columns: ["user_id"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["id"]
    }
                  ]
                },"users": {
                  Row: {
                    "avatar_url": string | null,"created_at": string,"deleted_at": string | null,"display_name": string | null,"email": string,"first_name": string | null,"id": string,"last_login_at": string | null,"last_name": string | null,"profile": NonNullable<Json>,"status": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "avatar_url"?: string | null,"created_at"?: string,"deleted_at"?: string | null,"display_name"?: string | null,"email": string,"first_name"?: string | null,"id"?: string,"last_login_at"?: string | null,"last_name"?: string | null,"profile"?: NonNullable<Json>,"status"?: string,"updated_at"?: string
                  }
                  Update: {
                    "avatar_url"?: string | null,"created_at"?: string,"deleted_at"?: string | null,"display_name"?: string | null,"email"?: string,"first_name"?: string | null,"id"?: string,"last_login_at"?: string | null,"last_name"?: string | null,"profile"?: NonNullable<Json>,"status"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    
                  ]
                },"voice_agents": {
                  Row: {
                    "active": boolean,"created_at": string,"greeting": string | null,"id": string,"knowledge_base_id": string | null,"language": string,"llm_config": NonNullable<Json>,"name": string,"phone": string,"tenant_id": string,"updated_at": string,"voice_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "active"?: boolean,"created_at"?: string,"greeting"?: string | null,"id"?: string,"knowledge_base_id"?: string | null,"language"?: string,"llm_config"?: NonNullable<Json>,"name": string,"phone": string,"tenant_id": string,"updated_at"?: string,"voice_id": string
                  }
                  Update: {
                    "active"?: boolean,"created_at"?: string,"greeting"?: string | null,"id"?: string,"knowledge_base_id"?: string | null,"language"?: string,"llm_config"?: NonNullable<Json>,"name"?: string,"phone"?: string,"tenant_id"?: string,"updated_at"?: string,"voice_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "voice_agents_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "voice_agents_tenant_id_knowledge_base_id_fkey"
      columns: ["tenant_id","knowledge_base_id"]
isOneToOne: false
      referencedRelation: "voice_knowledge_bases"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"voice_call_segments": {
                  Row: {
                    "call_id": string,"content": string,"created_at": string,"id": string,"offset_ms": number,"search": unknown,"seq": number,"speaker": string,"tenant_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "call_id": string,"content": string,"created_at"?: string,"id"?: string,"offset_ms"?: number,"search"?: never,"seq": number,"speaker": string,"tenant_id": string
                  }
                  Update: {
                    "call_id"?: string,"content"?: string,"created_at"?: string,"id"?: string,"offset_ms"?: number,"search"?: never,"seq"?: number,"speaker"?: string,"tenant_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "voice_call_segments_tenant_id_call_id_fkey"
      columns: ["tenant_id","call_id"]
isOneToOne: false
      referencedRelation: "voice_calls"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "voice_call_segments_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"voice_calls": {
                  Row: {
                    "agent_id": string,"answer_inferred": boolean,"answered_at": string | null,"cost": number | null,"created_at": string,"customer_id": string | null,"direction": string,"duration_seconds": number | null,"ended_at": string | null,"from_number": string | null,"id": string,"outcome": string | null,"provider_call_id": string,"recording_object": string | null,"recording_path": string | null,"started_at": string,"status": string,"summary": string | null,"tenant_id": string,"ticket_id": string | null,"timed_out_at": string | null,"to_number": string | null,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "agent_id": string,"answer_inferred"?: boolean,"answered_at"?: string | null,"cost"?: number | null,"created_at"?: string,"customer_id"?: string | null,"direction"?: string,"duration_seconds"?: number | null,"ended_at"?: string | null,"from_number"?: string | null,"id"?: string,"outcome"?: string | null,"provider_call_id": string,"recording_object"?: string | null,"recording_path"?: string | null,"started_at"?: string,"status"?: string,"summary"?: string | null,"tenant_id": string,"ticket_id"?: string | null,"timed_out_at"?: string | null,"to_number"?: string | null,"updated_at"?: string
                  }
                  Update: {
                    "agent_id"?: string,"answer_inferred"?: boolean,"answered_at"?: string | null,"cost"?: number | null,"created_at"?: string,"customer_id"?: string | null,"direction"?: string,"duration_seconds"?: number | null,"ended_at"?: string | null,"from_number"?: string | null,"id"?: string,"outcome"?: string | null,"provider_call_id"?: string,"recording_object"?: string | null,"recording_path"?: string | null,"started_at"?: string,"status"?: string,"summary"?: string | null,"tenant_id"?: string,"ticket_id"?: string | null,"timed_out_at"?: string | null,"to_number"?: string | null,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "voice_calls_tenant_id_agent_id_fkey"
      columns: ["tenant_id","agent_id"]
isOneToOne: false
      referencedRelation: "voice_agents"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "voice_calls_tenant_id_customer_id_fkey"
      columns: ["tenant_id","customer_id"]
isOneToOne: false
      referencedRelation: "voice_customers"
      referencedColumns: ["tenant_id","id"]
    },{
      foreignKeyName: "voice_calls_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "voice_calls_tenant_id_ticket_id_fkey"
      columns: ["tenant_id","ticket_id"]
isOneToOne: false
      referencedRelation: "tickets"
      referencedColumns: ["tenant_id","id"]
    }
                  ]
                },"voice_customers": {
                  Row: {
                    "created_at": string,"email": string | null,"id": string,"marketing_consent": boolean,"marketing_consent_at": string | null,"name": string | null,"notes": string | null,"phone": string,"recording_consent": boolean,"recording_consent_at": string | null,"tags": (string)[],"tenant_id": string,"updated_at": string,"user_id": string | null
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"email"?: string | null,"id"?: string,"marketing_consent"?: boolean,"marketing_consent_at"?: string | null,"name"?: string | null,"notes"?: string | null,"phone": string,"recording_consent"?: boolean,"recording_consent_at"?: string | null,"tags"?: (string)[],"tenant_id": string,"updated_at"?: string,"user_id"?: string | null
                  }
                  Update: {
                    "created_at"?: string,"email"?: string | null,"id"?: string,"marketing_consent"?: boolean,"marketing_consent_at"?: string | null,"name"?: string | null,"notes"?: string | null,"phone"?: string,"recording_consent"?: boolean,"recording_consent_at"?: string | null,"tags"?: (string)[],"tenant_id"?: string,"updated_at"?: string,"user_id"?: string | null
                  }
                  Relationships: [
                    {
      foreignKeyName: "voice_customers_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "voice_customers_tenant_id_user_id_fkey"
      columns: ["tenant_id","user_id"]
isOneToOne: false
      referencedRelation: "memberships"
      referencedColumns: ["tenant_id","user_id"]
    }
                  ]
                },"voice_knowledge_bases": {
                  Row: {
                    "created_at": string,"description": string | null,"id": string,"name": string,"tenant_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"description"?: string | null,"id"?: string,"name": string,"tenant_id": string,"updated_at"?: string
                  }
                  Update: {
                    "created_at"?: string,"description"?: string | null,"id"?: string,"name"?: string,"tenant_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "voice_knowledge_bases_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                },"webhook_endpoints": {
                  Row: {
                    "consecutive_failures": number,"created_at": string,"description": string | null,"disabled_reason": string | null,"enabled": boolean,"event_types": (string)[],"failing_since": string | null,"id": string,"previous_secret_encrypted": string | null,"previous_secret_expires_at": string | null,"secret_encrypted": string,"secret_rotated_at": string | null,"tenant_id": string,"updated_at": string,"url": string
                  }
                  ComputedFields: never
                  Insert: {
                    "consecutive_failures"?: number,"created_at"?: string,"description"?: string | null,"disabled_reason"?: string | null,"enabled"?: boolean,"event_types"?: (string)[],"failing_since"?: string | null,"id"?: string,"previous_secret_encrypted"?: string | null,"previous_secret_expires_at"?: string | null,"secret_encrypted": string,"secret_rotated_at"?: string | null,"tenant_id": string,"updated_at"?: string,"url": string
                  }
                  Update: {
                    "consecutive_failures"?: number,"created_at"?: string,"description"?: string | null,"disabled_reason"?: string | null,"enabled"?: boolean,"event_types"?: (string)[],"failing_since"?: string | null,"id"?: string,"previous_secret_encrypted"?: string | null,"previous_secret_expires_at"?: string | null,"secret_encrypted"?: string,"secret_rotated_at"?: string | null,"tenant_id"?: string,"updated_at"?: string,"url"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "webhook_endpoints_tenant_id_fkey"
      columns: ["tenant_id"]
isOneToOne: false
      referencedRelation: "tenants"
      referencedColumns: ["id"]
    }
                  ]
                }
          }
          Views: {
            [_ in never]: never
          }
          Functions: {
            [_ in never]: never
          }
          Enums: {
            [_ in never]: never
          }
          CompositeTypes: {
            [_ in never]: never
          }
        }
}

type DatabaseWithoutInternals = Omit<Database, '__InternalSupabase'>

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
  ? (DefaultSchema["Tables"] & DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
      Row: infer R
    }
    ? R
    : never
  : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Insert: infer I
    }
    ? I
    : never
  : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Update: infer U
    }
    ? U
    : never
  : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never = never
> = DefaultSchemaEnumNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
  ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
  : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never = never
> = PublicCompositeTypeNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
  ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
  : never

export const Constants = {
  "public": {
          Enums: {
            
          }
        }
} as const
